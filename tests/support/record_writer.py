"""
A child process that writes records into an SQLite store one after the
other and prints ``written KEY`` once each write's Deferred has fired, for
the test that SIGKILLs it in the middle.

    python -m tests.support.record_writer PATH COUNT
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred, ensureDeferred

from rpoold.stores.sqlite import SQLiteRecords

KIND = "durable"


def key(n: int) -> str:
    return f"k{n:06d}"


async def write(reactor: Any, path: str, count: int) -> None:
    store = SQLiteRecords(path, reactor)
    await store.open()
    print("open", flush=True)
    for n in range(count):
        await store.put(KIND, key(n), {"n": n, "pad": "x" * 200})
        print(f"written {key(n)}", flush=True)
    print("done", flush=True)
    await Deferred()  # until killed


def main(reactor: Any, path: str, count: str) -> Deferred[None]:
    return ensureDeferred(write(reactor, path, int(count)))


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
