"""
The README's shell commands, read from its ```` ```sh ```` blocks, and what
the README test makes of each (``tests/test_readme.py``).

A block whose first line starts with :data:`NOT_RUN` (and gives a reason)
is illustrative and not run.  Every other block is run command by command;
a command is a line (with its ``\\`` continuations), and the comments on
it and on the lines just above it say what it should answer (a status
such as ``(204)`` or ``# 401``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: The first line of a block that the README test does not run.
NOT_RUN = "# not run by the README test:"

_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
#: The ports the README's commands name (``127.0.0.1:8080``,
#: ``tcp:5000``, ``--port 6380``); the test runs each on a free one.
PORT = re.compile(r"(?P<before>127\.0\.0\.1:|tcp:|--port )(?P<port>\d{4,5})\b")
_STATUS = re.compile(r"(?<![\w.:/=-])([1-5]\d\d)(?![\w./])")


@dataclass
class Command:
    """One command of a block: its text and what the README says of it."""

    text: str
    comment: str
    line: int

    @property
    def background(self) -> bool:
        """Whether it ends in ``&`` (a job of the shell)."""
        return self.text.rstrip().endswith("&") and not self.text.rstrip().endswith("&&")

    @property
    def expected_status(self) -> int | None:
        """The HTTP status the comments name, if any."""
        found = _STATUS.search(self.comment)
        return int(found.group(1)) if found else None


@dataclass
class Block:
    """A ```` ```sh ```` block: where it starts, its commands, whether it runs."""

    line: int
    commands: list[Command] = field(default_factory=list)
    not_run: str | None = None


def split_comment(line: str) -> tuple[str, str]:
    """``(code, comment)`` of one shell line (a ``#`` that starts a word, outside quotes)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"':
                continue
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1:].strip()
    return line.rstrip(), ""


def sh_blocks(markdown: str) -> list[Block]:
    """Every ```` ```sh ```` block of ``markdown``, in order, with its commands."""
    blocks: list[Block] = []
    for fence in _FENCE.finditer(markdown):
        if fence.group(1) != "sh":
            continue
        first_line = markdown.count("\n", 0, fence.start(2)) + 1
        body = fence.group(2)
        block = Block(line=first_line)
        lines = body.splitlines()
        if lines and lines[0].startswith(NOT_RUN):
            reason = lines[0][len(NOT_RUN):].strip()
            if not reason:
                raise ValueError(f"README line {first_line}: {NOT_RUN!r} without a reason")
            block.not_run = reason
        comments: list[str] = []
        pending: list[str] = []
        start = 0
        for offset, raw in enumerate(lines):
            code, comment = split_comment(raw)
            if not pending:
                start = first_line + offset
            if not code.strip():
                if comment:
                    comments.append(comment)
                else:
                    comments = []
                continue
            if comment:
                comments.append(comment)
            if code.endswith("\\"):
                pending.append(code[:-1])
                continue
            pending.append(code)
            block.commands.append(Command(" ".join(part.strip() for part in pending),
                                          " ".join(comments), start))
            pending, comments = [], []
        if pending:
            raise ValueError(f"README line {start}: a command ends in a continuation")
        blocks.append(block)
    return blocks


def readme_ports(blocks: list[Block]) -> set[int]:
    """The ports the commands of the blocks that run name."""
    return {int(m.group("port")) for block in blocks if block.not_run is None
            for command in block.commands for m in PORT.finditer(command.text)}


def substitute_ports(text: str, ports: dict[int, int]) -> str:
    """``text`` with each port of ``ports`` replaced by the one it maps to."""
    def swap(match: re.Match[str]) -> str:
        port = int(match.group("port"))
        return match.group("before") + str(ports.get(port, port))
    return PORT.sub(swap, text)
