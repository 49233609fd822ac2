"""A real ``redis-server`` child, for what speaks Redis."""

from __future__ import annotations

import tempfile

from testbed.ports import free_port, port_open
from testbed.processes import Child, wait_until


class RedisServer:
    """
    A real ``redis-server`` on a free loopback port, without persistence.

    :param extra: more ``redis-server`` options, after the defaults (a later
        option wins: ``("--appendonly", "yes")`` turns the AOF on, in its
        temporary directory).
    """

    def __init__(self, port: int | None = None, password: str | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.password = password
        self.extra = extra
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.child: Child | None = None

    def start(self) -> RedisServer:
        """Start it; returns once its port accepts connections."""
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir]
        if self.password:
            argv += ["--requirepass", self.password]
        argv += self.extra
        self.child = Child(argv)
        wait_until(lambda: port_open(self.port), 10.0, "redis-server", self.child.process)
        return self

    def stop(self) -> None:
        """Stop it (what it wrote, if ``extra`` asked for persistence, stays in ``dir``)."""
        if self.child is not None:
            self.child.stop()
            self.child = None
