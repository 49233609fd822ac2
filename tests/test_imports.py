"""
Who may import whom: the daemon and its plugins stand on their own (they
never import the tests nor ``testbed``), ``testbed`` never imports the
tests, and the benchmarks use ``testbed``, not the tests.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.processes import ROOT

#: Each directory, and the top-level packages its modules must not import.
FORBIDDEN = {
    "rpoold": {"tests", "testbed", "bench"},
    "plugins": {"tests", "testbed", "bench"},
    "twisted": {"tests", "testbed", "bench"},
    "testbed": {"tests", "bench"},
    "bench": {"tests"},
}


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports (at any depth of its code), with the line."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module


@pytest.mark.parametrize("directory", sorted(FORBIDDEN))
def test_no_forbidden_imports(directory: str) -> None:
    modules = sorted((ROOT / directory).rglob("*.py"))
    assert modules, directory
    found = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in modules
        for line, name in imported(path)
        if name.split(".")[0] in FORBIDDEN[directory]
    ]
    assert not found, found
