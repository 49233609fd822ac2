"""
Real child processes for tests: a free loopback port, a process that is
ready when it says so (or when its port answers), and is always stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


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


class RedisServer:
    """A real ``redis-server`` on a free loopback port, without persistence."""

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        self.port = port or free_port()
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.child: Child | None = None

    def start(self) -> RedisServer:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir]
        if self.password:
            argv += ["--requirepass", self.password]
        self.child = Child(argv)
        wait_until(lambda: port_open(self.port), 10.0, "redis-server", self.child.process)
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None
