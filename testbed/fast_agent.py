"""
A cheap stand-in for many nodes' core0 agents, for throughput benchmarks:
one process, one blocking connection per node (``BLPOP core:default``),
answering each command at once from a fixed table, so that what a
benchmark measures is the daemon, not the simulator.

Per command it costs one ``BLPOP`` reply read and one write (the result's
``RPUSH``, an ``EXPIRE`` of it, and the next ``BLPOP``, pipelined); no
pickup flag (rpoold does not wait for it).  It answers ``info.mem`` (the
seed node's figures), ``core.ping``, ``info.os`` (hostname ``node-<id>``)
and ``info.nic`` (one address per node); anything else ``UNKNOWN_CMD``.
It is not a simulator: there is no state.

    python -m testbed.fast_agent NODE_FILE      # the [[nodes]] file rpoold reads

It runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import re
import selectors
import signal
import socket
import sys
import tomllib
from typing import Any

MEM = {"active": 197136384, "available": 1454743552, "buffers": 0, "cached": 372428800,
       "free": 1521983488, "inactive": 323203072, "total": 2102710272, "used": 647966720,
       "usedPercent": 30.815787064362617, "wired": 0}


def resp(*args: str | bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _data(node: str, index: int) -> dict[str, str]:
    """Each command's ``data`` (JSON text) for one node."""
    return {
        "info.mem": json.dumps(MEM),
        "core.ping": json.dumps("PONG"),
        "info.os": json.dumps({"hostname": f"node-{node}", "os": "linux", "platform": "g8os"}),
        "info.nic": json.dumps([{"name": "eth0", "flags": ["up"], "hardwareaddr": "52:54:00:00:00:01",
                                 "addrs": [{"addr": f"10.0.{index // 250}.{index % 250 + 1}/16"}]}]),
    }


def answer(job: str, command: str, data: dict[str, str]) -> bytes:
    """The result object of a command, as JSON."""
    text = data.get(command)
    state = "SUCCESS" if text is not None else "UNKNOWN_CMD"
    return json.dumps({"id": job, "command": command, "data": text or "", "level": 20, "state": state,
                       "starttime": 1, "time": 0, "tags": "", "container": 0,
                       "streams": ["", ""]}).encode()


#: What rpoold's payloads start with (``plugins.core0.protocol.payload``).
_PAYLOAD = re.compile(rb'\{"id": "([0-9a-f-]+)", "command": "([a-z._/]+)", "arguments": \{\}\}')
_MARK = "0000feed-0000-4000-8000-00000000feed"


def templates(data: dict[str, str]) -> dict[bytes, tuple[bytes, bytes]]:
    """Each known command's answer around its job id: (before, after)."""
    made = {}
    for command in data:
        before, _, after = answer(_MARK, command, data).partition(_MARK.encode())
        made[command.encode()] = (before, after)
    return made


class _Replies:
    """An incremental RESP reader (the replies this agent gets)."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[Any]:
        self.buffer += data
        replies = []
        while True:
            parsed = self._one(0)
            if parsed is None:
                break
            value, end = parsed
            self.buffer = self.buffer[end:]
            replies.append(value)
        return replies

    def _one(self, at: int) -> tuple[Any, int] | None:
        line_end = self.buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        kind, rest = self.buffer[at:at + 1], self.buffer[at + 1:line_end]
        after = line_end + 2
        if kind in (b"+", b":"):
            return rest, after
        if kind == b"-":
            raise RuntimeError(f"redis error: {rest.decode()}")
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None, after
            if len(self.buffer) < after + length + 2:
                return None
            return self.buffer[after:after + length], after + length + 2
        if kind == b"*":
            count = int(rest)
            items = []
            for _ in range(max(count, 0)):
                parsed = self._one(after)
                if parsed is None:
                    return None
                item, after = parsed
                items.append(item)
            return items, after
        raise RuntimeError(f"unexpected reply {self.buffer[at:line_end]!r}")


_NEXT = resp("BLPOP", "core:default", "0")


class _Node:
    def __init__(self, entry: dict[str, Any], index: int) -> None:
        self.sock = socket.create_connection((entry["host"], entry.get("port", 6379)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.data = _data(entry["id"], index)
        self.templates = templates(self.data)
        self.replies = _Replies()
        self.unsent = b""
        hello = b""
        if entry.get("password"):
            hello += resp("AUTH", entry["password"])
        if entry.get("db"):
            hello += resp("SELECT", str(entry["db"]))
        self.sock.sendall(hello + resp("BLPOP", "core:default", "0"))
        self.sock.setblocking(False)

    def readable(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise SystemExit("a redis-server went away")
        out = []
        for reply in self.replies.feed(data):
            if not isinstance(reply, list) or len(reply) != 2:
                continue  # the replies of AUTH, SELECT, RPUSH, EXPIRE
            out.append(self._answer(reply[1]))
        if out:
            self.send(b"".join(out))

    def _answer(self, payload: bytes) -> bytes:
        """The commands answering one payload, and the next BLPOP."""
        found = _PAYLOAD.fullmatch(payload)
        if found is not None and found.group(2) in self.templates:
            job = found.group(1)
            before, after = self.templates[found.group(2)]
            result = before + job + after
        else:
            try:
                command = json.loads(payload)
                job, name = str(command["id"]).encode(), str(command.get("command", ""))
            except (ValueError, KeyError, TypeError):
                return _NEXT
            result = answer(job.decode(), name, self.data)
        key = b"result:" + job
        return resp("RPUSH", key, result) + resp("EXPIRE", key, "60") + _NEXT

    def send(self, data: bytes) -> None:
        data = self.unsent + data
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        self.unsent = data[sent:]
        while self.unsent:  # rare: the socket's buffer is full; wait for it
            selectors.DefaultSelector().select(0.01)
            try:
                sent = self.sock.send(self.unsent)
            except BlockingIOError:
                sent = 0
            self.unsent = self.unsent[sent:]


def serve(node_file: str) -> None:
    with open(node_file, "rb") as f:
        entries = tomllib.load(f).get("nodes", [])
    selector = selectors.DefaultSelector()
    nodes = [_Node(entry, index) for index, entry in enumerate(entries)]
    for node in nodes:
        selector.register(node.sock, selectors.EVENT_READ, node)
    running = [True]

    def stop(*_: Any) -> None:
        running[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"serving {len(nodes)} node(s)", flush=True)
    while running[0]:
        for key, _ in selector.select(0.5):
            key.data.readable()


if __name__ == "__main__":
    serve(sys.argv[1])
