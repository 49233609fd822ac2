"""
What tests ask of the split deployment's processes
(``testbed.ays_split.SplitEnvironment``): ``Sim`` drives the AYS
simulator's test controls (``/_sim/``) and reads its AYS API, over HTTP
from the test's reactor; ``on_node`` asks a simulated node directly, with
the published g8core client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import treq

from testbed.ays_split import REPO


class Sim:
    """The AYS simulator over HTTP, from tests running on the reactor."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        response = await treq.request(method, self.url + path, data=data, persistent=False)
        raw = await response.content()
        try:
            return response.code, json.loads(raw) if raw else None
        except ValueError:
            return response.code, raw.decode("utf-8", "replace")

    async def service(self, role: str, name: str) -> dict[str, Any] | None:
        code, body = await self.request("GET", f"/ays/repository/{REPO}/service/{role}/{name}")
        return body if code == 200 else None

    async def fail_action(self, actor: str, action: str, instance: str | None = None,
                          error: str | None = None, delay: float = 0, times: int = 1) -> None:
        spec: dict[str, Any] = {"actor": actor, "action": action, "times": times}
        if instance:
            spec["instance"] = instance
        if error:
            spec["error"] = error
        if delay:
            spec["delay"] = delay
        code, body = await self.request("POST", "/_sim/faults/actions", spec)
        assert code in (200, 201), (code, body)

    async def fail_endpoint(self, path: str, **spec: Any) -> None:
        code, body = await self.request("POST", "/_sim/faults/endpoints", {"path": path, **spec})
        assert code in (200, 201), (code, body)

    async def clear_faults(self) -> None:
        code, body = await self.request("DELETE", "/_sim/faults")
        assert code in (200, 204), (code, body)

    async def blueprints(self) -> list[dict[str, Any]]:
        code, body = await self.request("GET", "/_sim/blueprints")
        assert code == 200, (code, body)
        return list(body)

    async def runs(self) -> list[dict[str, Any]]:
        code, body = await self.request("GET", "/_sim/runs")
        assert code == 200, (code, body)
        return list(body)


def node_entries(nodes_file: Path) -> dict[str, dict[str, Any]]:
    """core0sim's node list, by node id."""
    import tomllib

    with open(nodes_file, "rb") as f:
        return {n["id"]: n for n in tomllib.load(f).get("nodes", [])}


async def on_node(nodes_file: Path, nodeid: str, command: str,
                  arguments: dict[str, Any] | None = None) -> Any:
    """
    Ask a simulated node directly, with the published g8core 1.0.0 client
    (in a thread: it blocks), what it runs: the decoded result data.
    """
    from twisted.internet.threads import deferToThread

    entry = node_entries(nodes_file)[nodeid]

    def ask() -> Any:
        import g8core

        client = g8core.Client(entry["host"], port=entry["port"], db=entry.get("db", 0),
                               password=entry.get("password", ""))
        result = client.sync(command, arguments or {})
        data = result.data
        return json.loads(data) if data else None

    return await deferToThread(ask)


async def containers_on_node(nodes_file: Path, nodeid: str) -> dict[str, int]:
    """The node's corex containers (``corex.list``): first tag -> container id."""
    listing = await on_node(nodes_file, nodeid, "corex.list")
    found = {}
    for cid, info in (listing or {}).items():
        tags = ((info.get("container") or {}).get("arguments") or {}).get("tags") or []
        if tags:
            found[tags[0]] = int(cid)
    return found
