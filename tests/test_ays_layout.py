"""
How the AYS backend and the AYS simulator are put together: neither
speaks core0 through the core0 backend's code (the AYS backend only
through ``rpoold.nodes.INodeAgents``, whose core0 side only its factory
imports; the simulator with its own speaker, reading core0 data with the
pool's shapes, ``plugins.core0.shapes``), and every operation of
``AysBackend`` is one delegation to its family object, under the
contract's parameter names.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

import pytest

from plugins.ays.backend import AysBackend
from rpoold.interfaces import (
    IBridges,
    IContainers,
    IFilesystems,
    INodes,
    IStorageClusters,
    IStoragePools,
    IVdisks,
    IVMs,
    IZerotiers,
)

ROOT = Path(__file__).resolve().parents[1]
#: What of core0's code each package may import: the AYS backend's factory
#: its node agents; a simulator (which may use the product) the data shapes.
ALLOWED = {"plugins/ays/factory.py": {"plugins.core0.agents"}, "plugins/ayssim": {"plugins.core0.shapes"}}


def imported(path: Path) -> set[str]:
    """The modules a file imports (``from a import b`` as ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def core0(name: str) -> bool:
    return name == "plugins.core0" or name.startswith("plugins.core0.")


@pytest.mark.parametrize("package", ["plugins/ays", "plugins/ayssim"])
def test_no_core0_backend_code(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    for path in files:
        where = str(path.relative_to(ROOT))
        allowed = ALLOWED.get(where, set()) | ALLOWED.get(package, set())
        found = {n for n in imported(path) if core0(n)
                 and not any(n == a or n.startswith(f"{a}.") for a in allowed)}
        assert not found, (where, found)


FAMILIES = (INodes, IBridges, IStoragePools, IFilesystems, IZerotiers, IContainers, IVMs,
            IStorageClusters, IVdisks)


@pytest.mark.parametrize("interface", FAMILIES, ids=lambda i: i.__name__)
def test_each_operation_is_one_delegation(interface: type) -> None:
    for name in interface.names():  # type: ignore[attr-defined]
        source = textwrap.dedent(inspect.getsource(getattr(AysBackend, name)))
        [function] = ast.parse(source).body
        assert isinstance(function, ast.FunctionDef)
        parameters = [a.arg for a in function.args.args][1:]
        assert tuple(parameters) == tuple(
            interface[name].getSignatureInfo()["positional"]), name  # type: ignore[index]
        [statement] = function.body
        assert isinstance(statement, ast.Return) and isinstance(statement.value, ast.Call), name
        call = statement.value
        assert isinstance(call.func, ast.Attribute) and call.func.attr == name, name
        holder = call.func.value
        assert (isinstance(holder, ast.Attribute) and isinstance(holder.value, ast.Name)
                and holder.value.id == "self"), name
        assert [a.id for a in call.args if isinstance(a, ast.Name)] == parameters, name
        assert len(call.args) == len(parameters) and not call.keywords, name
