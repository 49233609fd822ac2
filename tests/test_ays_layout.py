"""
How the AYS backend and the AYS simulator are put together: neither
speaks core0 through the core0 backend's code (the AYS backend only
through ``rpoold.nodes.INodeAgents``, whose core0 side only its factory
imports; the simulator with its own speaker, reading core0 data with the
pool's shapes, ``plugins.core0.shapes``), and every operation of
``AysBackend`` is one delegation to its family object, under the
contract's parameter names (the delegates ``rpoold.delegation.serve``
generates from the interfaces each family class declares).
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from zope.interface import implementer

from plugins.ays.backend import PARTS, AysBackend
from plugins.ays.network import Bridges
from rpoold.delegation import family_interfaces, serve
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


class Recorder:
    """A stand-in family object: every method records its call and answers ``answer``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.answer: Deferred[None] = Deferred()

    def __getattr__(self, name: str) -> Callable[..., Deferred[None]]:
        def method(*args: Any, **kwargs: Any) -> Deferred[None]:
            self.calls.append((name, args, kwargs))
            return self.answer

        return method


def delegation_problems(backend: type, interface: Any, attribute: str, part: type) -> list[str]:
    """
    What keeps each method of ``interface`` on ``backend`` from being one
    delegation to ``part``'s method of the same name, held at ``attribute``,
    under the contract's parameter names (empty: none).
    """
    problems = []
    for name in sorted(interface.names()):
        delegate = getattr(backend, name, None)
        implementation = getattr(part, name)
        if getattr(delegate, "__wrapped__", None) is not implementation:
            problems.append(f"{name}: not a delegate to {part.__name__}.{name}")
            continue
        assert delegate is not None
        parameters = tuple(inspect.signature(delegate).parameters)[1:]
        contract = tuple(interface[name].getSignatureInfo()["positional"])
        if parameters != contract:
            problems.append(f"{name}: parameters {parameters}, the contract's are {contract}")
            continue
        family = Recorder()
        arguments = tuple(f"<{p}>" for p in parameters)
        answer = delegate(SimpleNamespace(**{attribute: family}), *arguments)
        if family.calls != [(name, arguments, {})] or answer is not family.answer:
            problems.append(f"{name}: calls {family.calls} and answers {answer!r}")
    return problems


def test_each_family_is_served_by_one_part() -> None:
    served = [i for part in PARTS.values() for i in family_interfaces(part)]
    assert sorted(i.__name__ for i in served) == sorted(i.__name__ for i in FAMILIES)
    for interface in FAMILIES:
        assert interface.implementedBy(AysBackend), interface.__name__


@pytest.mark.parametrize("interface", FAMILIES, ids=lambda i: i.__name__)
def test_each_operation_is_one_delegation(interface: Any) -> None:
    [(attribute, part)] = [(a, p) for a, p in PARTS.items() if interface in family_interfaces(p)]
    assert delegation_problems(AysBackend, interface, attribute, part) == []


# The check above fails on delegations that are not ----------------------------------------------


@implementer(IBridges)
class MisnamedBridges:
    """``IBridges`` with ``get_bridge``'s ``bridgeid`` spelt otherwise."""

    async def create_bridge(self, nodeid: str, body: Any) -> None: ...

    async def list_bridges(self, nodeid: str) -> list[Any]: ...

    async def get_bridge(self, nodeid: str, name: str) -> Any: ...

    async def delete_bridge(self, nodeid: str, bridgeid: str) -> None: ...


def handwritten(backend: type) -> None:
    def get_bridge(self: Any, nodeid: str, bridgeid: str) -> Any:
        return self.bridges.get_bridge(nodeid, bridgeid)

    backend.get_bridge = get_bridge  # type: ignore[attr-defined]


def another_method(backend: type) -> None:
    backend.get_bridge = backend.delete_bridge  # type: ignore[attr-defined]


def swapped_arguments(backend: type) -> None:
    @functools.wraps(Bridges.get_bridge)
    def get_bridge(self: Any, nodeid: str, bridgeid: str) -> Any:
        return self.bridges.get_bridge(bridgeid, nodeid)

    backend.get_bridge = get_bridge  # type: ignore[attr-defined]


def two_calls(backend: type) -> None:
    @functools.wraps(Bridges.get_bridge)
    def get_bridge(self: Any, nodeid: str, bridgeid: str) -> Any:
        self.bridges.list_bridges(nodeid)
        return self.bridges.get_bridge(nodeid, bridgeid)

    backend.get_bridge = get_bridge  # type: ignore[attr-defined]


@pytest.mark.parametrize("spoil", [handwritten, another_method, swapped_arguments, two_calls])
def test_the_delegation_check_fails_on_other_code(spoil: Callable[[type], None]) -> None:
    backend = type("Backend", (), {})
    serve(backend, {"bridges": Bridges})
    assert delegation_problems(backend, IBridges, "bridges", Bridges) == []
    spoil(backend)
    [problem] = delegation_problems(backend, IBridges, "bridges", Bridges)
    assert problem.startswith("get_bridge: "), problem


def test_the_delegation_check_fails_on_other_parameter_names() -> None:
    backend = type("Backend", (), {})
    serve(backend, {"bridges": MisnamedBridges})
    [problem] = delegation_problems(backend, IBridges, "bridges", MisnamedBridges)
    assert problem.startswith("get_bridge: parameters ('nodeid', 'name')"), problem
