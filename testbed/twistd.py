"""
``twistd`` children from this checkout: the argv, a plugin started and
waited for until its port answers, and ``twistd rpoold`` on a free port.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testbed.ports import free_port, port_open
from testbed.processes import ROOT, Child, python_env, wait_until


def twistd(*args: str) -> list[str]:
    """argv of ``twistd --nodaemon --pidfile= ARGS`` with this interpreter."""
    script = Path(sys.executable).with_name("twistd")
    launcher = [str(script)] if script.exists() else [
        sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
    return [*launcher, "--nodaemon", "--pidfile=", *args]


def start_twistd(plugin: str, port: int, *args: str, timeout: float = 30.0) -> Child:
    """
    Start ``twistd PLUGIN ARGS`` from this checkout and wait until ``port``
    on loopback accepts connections (the plugin's ``--port`` is among
    ``args``).

    :raises RuntimeError: it exited or did not listen in time; the message
        holds its output.
    """
    child = Child(twistd(plugin, *args), env=python_env(), cwd=ROOT)
    try:
        wait_until(lambda: port_open(port), timeout, plugin, child.process)
    except Exception:
        output = child.output()
        child.stop()
        raise RuntimeError(f"{plugin} did not start:\n{output}") from None
    return child


def start_rpoold(config: str | None = None, port: int | None = None,
                 extra: tuple[str, ...] = (), timeout: float = 30.0) -> tuple[Child, str]:
    """
    Start ``twistd rpoold`` on a free loopback port.

    :returns: the child and the base URL (``http://127.0.0.1:PORT``).
    """
    port = port or free_port()
    args = ["--port", f"tcp:{port}:interface=127.0.0.1"]
    if config:
        args += ["--config", config]
    return start_twistd("rpoold", port, *args, *extra, timeout=timeout), f"http://127.0.0.1:{port}"


@contextmanager
def running_rpoold(config: str | None = None) -> Iterator[str]:
    """``twistd rpoold`` (by default on the embedded mock pool) while the block runs: its base URL."""
    child, url = start_rpoold(config)
    try:
        yield url
    finally:
        child.stop()
