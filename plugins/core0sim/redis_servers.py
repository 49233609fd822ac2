"""
``redis-server`` children of the simulator: loopback only, no
persistence, stopped with the simulator.  Where ``setpriv`` exists they
also get SIGTERM from the kernel if the simulator dies without stopping
them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
from collections import deque
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

REDIS_SERVER = "redis-server"
READY_MARK = b"Ready to accept connections"
STOP_GRACE_SECONDS = 5.0


class RedisStartError(Exception):
    """A redis-server child exited before it was ready."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisChild(ProcessProtocol):
    """
    One ``redis-server`` child process.

    :param port: its TCP port on 127.0.0.1.
    :param databases: how many database indexes it offers.
    :param password: ``requirepass``, when set.
    :param directory: its working directory (it writes nothing there).
    """

    def __init__(self, port: int, databases: int = 16, password: str | None = None,
                 directory: str = ".") -> None:
        self.port = port
        self.databases = databases
        self.password = password
        self.directory = directory
        self.pid: int | None = None
        self.exited: Deferred[None] = Deferred()
        self.ended = False
        self._ready: Deferred[None] = Deferred()
        self._seen = b""
        self._tail: deque[str] = deque(maxlen=20)

    def argv(self) -> list[str]:
        redis = shutil.which(REDIS_SERVER) or REDIS_SERVER
        argv = [
            redis, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--databases", str(self.databases),
            "--dir", self.directory, "--daemonize", "no", "--logfile", "",
        ]
        if self.password:
            argv += ["--requirepass", self.password]
        setpriv = shutil.which("setpriv")
        if setpriv:
            argv = [setpriv, "--pdeathsig", "TERM", *argv]
        return argv

    def start(self, reactor: Any) -> Deferred[None]:
        """Spawn it; fires once it accepts connections, fails if it exits first."""
        argv = self.argv()
        reactor.spawnProcess(self, argv[0], argv, env=dict(os.environ), childFDs={0: "w", 1: "r", 2: "r"})
        return self._ready

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.pid = self.transport.pid
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        text = self._seen + data
        lines = text.split(b"\n")
        self._seen = lines.pop()
        for line in lines:
            self._tail.append(line.decode("utf-8", "replace"))
            if READY_MARK in line and not self._ready.called:
                self._ready.callback(None)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.ended = True
        if not self._ready.called:
            self._ready.errback(RedisStartError(
                f"redis-server on port {self.port} exited: " + " | ".join(self._tail)))
        elif self.pid is not None:
            log.info("redis-server on port {port} exited", port=self.port)
        self.exited.callback(None)

    def stop(self, reactor: Any) -> Deferred[None]:
        """SIGTERM, SIGKILL after a grace period; fires once it has exited."""
        if self.ended or self.transport is None:
            return succeed(None)
        self.transport.signalProcess("TERM")

        def kill() -> None:
            if not self.ended and self.pid:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        timer = reactor.callLater(STOP_GRACE_SECONDS, kill)
        d: Deferred[None] = Deferred()

        def exited(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            d.callback(None)
            return result

        self.exited.addBoth(exited)
        return d
