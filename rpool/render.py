"""
How answers are shown: a table for a list of objects, a two-column table
for one object, the text for a string; with ``--json`` the answer as JSON
(indented), for scripts.  Tables are drawn by rich; when stdout is not a
terminal they are not wrapped to its width.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

#: Width of tables written to a pipe or a file (no terminal to fit).
PIPE_WIDTH = 400


def stdout_console() -> Console:
    """The console of stdout (wide when it is not a terminal)."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=PIPE_WIDTH)
    return console


def stderr_console() -> Console:
    """The console of stderr: messages and progress."""
    return Console(stderr=True, highlight=False)


def cell(value: Any) -> str:
    """One value as table text: scalars as they are, lists and objects as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            return ", ".join(str(v) for v in value)
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def columns_of(rows: list[dict[str, Any]], preferred: tuple[str, ...] = ()) -> list[str]:
    """The keys of ``rows``: ``preferred`` first (those present), then the others as they come."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    first = [k for k in preferred if k in seen]
    return first + [k for k in seen if k not in first]


def table(rows: list[dict[str, Any]], columns: list[str] | None = None,
          title: str | None = None) -> Table:
    """A table of ``rows`` (a row per object, a column per key)."""
    columns = columns or columns_of(rows)
    view = Table(box=box.SIMPLE_HEAD, title=title, show_edge=False, pad_edge=False)
    for name in columns:
        view.add_column(name, overflow="fold")
    for row in rows:
        view.add_row(*(cell(row.get(name)) for name in columns))
    return view


def key_values(item: dict[str, Any]) -> Table:
    """One object as a two-column table (key, value)."""
    view = Table(box=None, show_header=False, pad_edge=False)
    view.add_column("key", style="bold")
    view.add_column("value", overflow="fold")
    for key, value in item.items():
        view.add_row(key, cell(value))
    return view


class Output:
    """
    Where a command's result goes.

    :ivar json: print JSON instead of tables.
    """

    def __init__(self, json_mode: bool = False) -> None:
        self.json = json_mode
        self.console = stdout_console()

    def data(self, value: Any, columns: tuple[str, ...] = ()) -> None:
        """Show an answer's body (``columns``: the preferred first columns of a table)."""
        if self.json:
            self.raw_json(value)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            self.show(table(value, columns_of(value, columns)))
        elif isinstance(value, list):
            for item in value:
                self.console.print(cell(item), markup=False)
        elif isinstance(value, dict):
            self.show(key_values(value))
        elif value is not None:
            self.console.print(cell(value), markup=False)

    def show(self, view: RenderableType) -> None:
        """Print a table (to a pipe or file: without the cells' trailing padding)."""
        if self.console.is_terminal:
            self.console.print(view)
            return
        with self.console.capture() as captured:
            self.console.print(view)
        sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
        sys.stdout.flush()

    def raw_json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, indent=2) + "\n")
        sys.stdout.flush()

    def done(self, message: str, value: dict[str, Any]) -> None:
        """A write that answered no body: ``message``, or ``value`` as JSON."""
        if self.json:
            self.raw_json(value)
        else:
            self.console.print(message, markup=False)

    def empty(self, what: str) -> None:
        """An empty list: ``[]`` in JSON, a line saying so otherwise."""
        if self.json:
            self.raw_json([])
        else:
            self.console.print(f"no {what}", markup=False)
