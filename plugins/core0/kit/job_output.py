"""
A job's output, followed (``IJobOutput``): as the agent streams it where
it does (the later protocol's ``stream:<id>``, read without being taken,
so that several readers see it all), else all at once from the job's
result when it ends (an agent of 2017 keeps only the final streams).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import deferLater
from zope.interface import implementer

from rpoold.interfaces import IJobOutput
from rpoold.nodes import ICommandClient

#: First and longest pause between two looks at a job that has said nothing new.
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 1.0
#: ``meta`` flags of the last entry of a streamed output.
EOF_FLAGS = 0x6
EOF_OK = 0x2

Piece = tuple[str, str]


@implementer(IJobOutput)
class JobOutput:
    """
    :param client: the node's agent (a container's jobs publish there too).
    :param jobid: the job (running or ended).
    :param clock: an ``IReactorTime``.
    """

    def __init__(self, client: ICommandClient, jobid: str, clock: Any) -> None:
        self.client = client
        self.jobid = jobid
        self.clock = clock
        self.live = False
        self._offset = 0
        self._done = False
        self._closed = False

    async def read(self) -> list[Piece]:
        pause = FIRST_PAUSE
        while not self._done and not self._closed:
            entries = await self.client.read_stream(self.jobid, self._offset)
            if entries:
                self._offset += len(entries)
                self.live = True
                return await self._pieces(entries)
            _, result = await self.client.peek(self.jobid)
            if result is not None:
                if self.live:
                    # Ended without its last entry (or it came just now): read once more.
                    entries = await self.client.read_stream(self.jobid, self._offset)
                    self._offset += len(entries)
                    pieces = [p for p in await self._pieces(entries, result) if p[0] != "end"]
                    self._done = True
                    return [*pieces, ("end", _state(result))]
                self._done = True
                return [*_final_streams(result), ("end", _state(result))]
            await deferLater(self.clock, pause, lambda: None)
            pause = min(pause * 2, LONGEST_PAUSE)
        return []

    async def _pieces(self, entries: list[dict[str, Any]], result: Any = None) -> list[Piece]:
        pieces: list[Piece] = []
        for entry in entries:
            found = entry.get("message")
            message: dict[str, Any] = found if isinstance(found, dict) else {}
            meta = int(message.get("meta", 0) or 0)
            text = str(message.get("message", ""))
            if text or not meta & EOF_FLAGS:
                pieces.append(("stderr" if meta >> 16 == 2 else "stdout", text + "\n"))
            if meta & EOF_FLAGS:
                self._done = True
                if result is None:
                    _, result = await self.client.peek(self.jobid)
                state = _state(result) if result is not None else ("success" if meta & EOF_OK else "error")
                pieces.append(("end", state))
                break
        return pieces

    async def close(self) -> None:
        self._closed = True


def _state(result: Any) -> str:
    state = str(getattr(result, "state", "") or "unknown").lower()
    return "duplicate_id" if state == "dupilicate_id" else state


def _final_streams(result: Any) -> list[Piece]:
    streams = (getattr(result, "raw", None) or {}).get("streams") or []
    pieces = []
    for name, text in zip(("stdout", "stderr"), streams, strict=False):
        if text:
            pieces.append((name, str(text)))
    return pieces
