"""
``rpool`` run as a user runs it: the installed console script (or ``python
-m rpool``) as a subprocess, importing this checkout, with a configuration
and cache directory of its own (``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME``)
and ``RPOOL_URL`` set to the server under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.processes import ROOT, python_env

#: Variables of the environment that would steer the client under test.
CLIENT_VARIABLES = ("RPOOL_URL", "RPOOL_TOKEN", "RPOOL_TIMEOUT", "RPOOL_CONFIG", "COLUMNS")


def rpool_argv() -> list[str]:
    """The installed ``rpool`` script beside this interpreter, else ``python -m rpool``."""
    script = Path(sys.executable).with_name("rpool")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rpool"]


@dataclass
class Run:
    """One finished run: exit status and both outputs."""

    argv: list[str]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON (fails the test when it is not)."""
        try:
            return json.loads(self.stdout)
        except ValueError as e:
            raise AssertionError(f"stdout of {self.argv} is not JSON ({e}):\n{self}") from None

    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


class Rpool:
    """
    :param url: the server (``RPOOL_URL``); ``None``: not set.
    :param home: where its configuration and cache directories go.
    """

    def __init__(self, url: str | None, home: Path) -> None:
        self.url = url
        self.home = home
        self.config_home = home / "config"
        self.cache_home = home / "cache"

    @property
    def config_file(self) -> Path:
        """Where the client looks for its configuration file."""
        return self.config_home / "rpool" / "config.toml"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_VARIABLES}
        env.update(python_env())
        env.update(XDG_CONFIG_HOME=str(self.config_home), XDG_CACHE_HOME=str(self.cache_home))
        if self.url:
            env["RPOOL_URL"] = self.url
        env.update(extra or {})
        return env

    def __call__(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
                 timeout: float = 60.0) -> Run:
        """Run ``rpool ARGS`` to its end (at most ``timeout`` seconds)."""
        argv = [*rpool_argv(), *args]
        done = subprocess.run(argv, env=self.env(env), cwd=ROOT, input=stdin, capture_output=True,
                              text=True, timeout=timeout)
        return Run(argv, done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, **kwargs: Any) -> Run:
        """Run it and check that it exits 0."""
        run = self(*args, **kwargs)
        assert run.code == 0, f"rpool {' '.join(args)}:\n{run}"
        return run
