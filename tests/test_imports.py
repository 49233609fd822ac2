"""
Who may import whom: the daemon and its plugins stand on their own (they
never import the tests nor ``testbed``, nor the ``rpool`` client, whose
libraries the daemon's install does not bring), the client knows nothing
of the daemon but its ``/openapi.json``, ``testbed`` never imports the
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
    "rpoold": {"tests", "testbed", "bench", "rpool"},
    "plugins": {"tests", "testbed", "bench", "rpool"},
    "twisted": {"tests", "testbed", "bench", "rpool"},
    "testbed": {"tests", "bench"},
    "bench": {"tests"},
    # The client knows the server only by its /openapi.json.
    "rpool": {"rpoold", "plugins", "twisted", "tests", "testbed", "bench"},
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


# The product and its simulators ----------------------------------------------------------

#: The simulators: they may import the product; no backend imports them.
SIMULATORS = ("plugins.poolsim", "plugins.core0sim", "plugins.ayssim")
#: The backends' packages (the ``mock`` dropin names its factory in the
#: simulated pool by string: the one place the two meet).
BACKENDS = ("plugins/core0", "plugins/ays", "plugins/mock")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(path: Path, known: set[str]) -> set[str]:
    """
    The project's modules ``path`` imports anywhere in its code
    (``from a import b``: ``a.b`` if that is a module).
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                     for alias in node.names]
        found.update(n for n in names if n in known)
    return found


@pytest.mark.parametrize("package", BACKENDS)
def test_no_backend_imports_a_simulator(package: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in imported(path)
        if name.startswith(SIMULATORS)
    ]
    assert not found, found


def test_no_import_cycles() -> None:
    """No module of ``rpoold`` or ``plugins`` imports itself through others (nor inside functions)."""
    paths = {module_name(p): p for d in ("rpoold", "plugins") for p in (ROOT / d).rglob("*.py")}
    known = set(paths)
    graph = {name: project_imports(path, known) - {name} for name, path in paths.items()}
    cycles = [sorted(c) for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, cycles


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for other in edges:
                if other not in index:
                    index[other] = low[other] = len(index)
                    stack.append(other)
                    on_stack.add(other)
                    work.append((other, iter(sorted(graph[other]))))
                    break
                if other in on_stack:
                    low[node] = min(low[node], index[other])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    found.append(component)
    return found


def test_no_class_inherits_a_family_from_another_module() -> None:
    """A backend holds its families; no class of ``plugins`` gets family methods from a base elsewhere."""
    import importlib
    import inspect

    from zope.interface import implementedBy

    from rpoold.interfaces import FAMILY_INTERFACES

    families = set(FAMILY_INTERFACES.values())
    found = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        module = importlib.import_module(module_name(path))
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            for base in cls.__mro__[1:]:
                if base.__module__ != cls.__module__ and any(
                        i in families for i in implementedBy(base).flattened()):
                    found.append(f"{cls.__module__}.{cls.__name__} inherits "
                                 f"{base.__module__}.{base.__name__}")
    assert not found, found
