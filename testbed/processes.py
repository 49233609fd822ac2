"""
Real child processes: one whose output is kept and that is always
stopped, a wait for it to be ready that fails when it dies, the
environment under which it imports this checkout, and who a process's
children are.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

#: The checkout (the children run from it and import it).
ROOT = Path(__file__).resolve().parents[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` or if ``process`` dies."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout} s")
        time.sleep(0.02)


def _default_stop_signals() -> None:
    """
    Run in the child before it executes its program: SIGINT and SIGQUIT
    back to their default action.  A shell without job control starts a
    background command with both ignored, an ignored signal stays ignored
    across ``exec``, and twistd only takes over SIGINT when it is not
    ignored: a suite started that way would see its daemons ignore SIGINT.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class Child:
    """
    A child process whose output goes to a temporary file, readable at
    any time with ``output()``.  It starts with the default action for
    every stop signal, however this process was started.
    """

    def __init__(self, argv: list[str], env: dict[str, str] | None = None,
                 cwd: str | Path | None = None) -> None:
        self.argv = argv
        self.log = tempfile.NamedTemporaryFile(prefix="child-", suffix=".log", delete=False)  # noqa: SIM115
        full_env = dict(os.environ)
        full_env.update(env or {})
        ignored = signal.SIG_IGN in (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGQUIT))
        self.process = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
            cwd=str(cwd) if cwd else None, start_new_session=True,
            # Only when needed: a function to run before exec costs a full fork.
            preexec_fn=_default_stop_signals if ignored else None,
        )

    def output(self) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it lingers; returns the exit status."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(timeout)
        self.log.close()
        return self.process.returncode


def python_env() -> dict[str, str]:
    """Environment under which children import this checkout (and find its dropins)."""
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found
