"""
What an operation waits for after its backend call, asked through the
contract's own reads (so every backend is followed alike), and the
nodes' status as the daemon sees it.

- a reboot ends when the node answers again: its ``info.os`` shows a boot
  after the reboot was asked (``bootTime``), or it answers after having
  been seen away; it fails after ``reboot_timeout``;
- a VM's create, start, stop, shutdown, pause, resume or migration ends
  when the VM shows its target state (``GET`` of the VM, on the target
  node for a migration), each state seen being a ``vm.state`` event; it
  cannot be cancelled;
- a storage cluster's deploy ends when it is ``ready``;
- a process start ends with its job (``job.ended``); cancelling it kills
  the job.

``NodeStatus`` keeps each node's last status in the store and tells a
change once (``node.status``), whichever daemon sees it first;
``NodeWatcher`` looks at every node now and then (the pings of
``GET /nodes``, or of ``POST /nodes/{id}/ping`` where another backend
answers for the nodes' agents).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from rpoold import errors
from rpoold.errors import TIMEOUTS
from rpoold.events import EventHub, now
from rpoold.operations import Settings, Tracked
from rpoold.records import IRecords

log = Logger()

#: Seconds one look at a node, a VM, a cluster or a job may take.
PROBE_TIMEOUT = 5.0
#: First and longest pause between two looks.
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 2.0
#: Record kind of the nodes' last status (daemon scope).
NODE_STATUS_KIND = "node_status"


def _bounded(value: Any, seconds: float, clock: Any) -> Deferred[Any]:
    d: Deferred[Any] = maybeDeferred(lambda: value)
    if isinstance(value, Deferred):
        d = value
    elif hasattr(value, "__await__"):
        d = ensureDeferred(value)
    return d.addTimeout(seconds, clock)


class NodeStatus:
    """
    The last status each node was seen in (``running``, ``halted``), in
    the store, so that daemons sharing it tell each change once.

    :param records: the daemon's scope of the store.
    :param hub: where ``node.status`` events go.
    """

    def __init__(self, records: IRecords, hub: EventHub) -> None:
        self.records = records
        self.hub = hub
        self._known: dict[str, str] = {}

    async def seen(self, nodeid: str, status: str, why: str = "") -> bool:
        """
        A node was seen ``running`` or ``halted``.

        :returns: whether this was a change (and its event was made here).
        """
        if self._known.get(nodeid) == status:
            return False
        for _ in range(3):
            found = await self.records.get(NODE_STATUS_KIND, nodeid)
            if found is not None and found.get("status") == status:
                self._known[nodeid] = status
                return False
            if found is None and status == "running" and nodeid not in self._known:
                # First sight of a node that answers: its status is known, nothing changed.
                if await self.records.add(NODE_STATUS_KIND, nodeid, {"status": status, "since": now()}):
                    self._known[nodeid] = status
                    return False
                continue
            if await self.records.replace(NODE_STATUS_KIND, nodeid, found,
                                          {"status": status, "since": now()}):
                self._known[nodeid] = status
                data: dict[str, Any] = {"status": status}
                if why:
                    data["reason"] = why
                await self.hub.emit("node.status", f"/nodes/{nodeid}", data)
                return True
        return False

    def forget(self, nodeid: str) -> None:
        self._known.pop(nodeid, None)


class Followers:
    """
    Follows an operation's target (``rpoold.writes.target_of``) to its end.

    :param routing: the backend serving each family.
    :param hub: the daemon's events.
    :param clock: an ``IReactorTime``.
    :param settings: the ``[operations]`` section (its timeouts).
    :param nodes: the nodes' status.
    """

    def __init__(self, routing: Mapping[str, object], hub: EventHub, clock: Any, settings: Settings,
                 nodes: NodeStatus) -> None:
        self.routing = routing
        self.hub = hub
        self.clock = clock
        self.settings = settings
        self.nodes = nodes

    def _ask(self, family: str, method: str, *args: Any) -> Deferred[Any]:
        backend = self.routing.get(family)
        if backend is None:
            raise errors.NotServed(f"no backend serves the '{family}' resources")
        return _bounded(getattr(backend, method)(*args), PROBE_TIMEOUT, self.clock)

    def _pause(self, seconds: float) -> Deferred[None]:
        return deferLater(self.clock, seconds, lambda: None)

    async def __call__(self, tracked: Tracked, spec: dict[str, Any]) -> None:
        kind = spec.get("kind")
        timeouts = {"reboot": self.settings.reboot_timeout, "vm": self.settings.transition_timeout,
                    "cluster": self.settings.transition_timeout, "job": self.settings.retention}
        if kind not in timeouts:
            raise errors.RpoolError(f"cannot follow an operation of kind {kind!r}")
        if "deadline" not in spec:
            spec["deadline"] = now() + timeouts[str(kind)]
            tracked.record["target"] = dict(spec)
            tracked.changed()
        if kind == "reboot":
            await self.reboot(tracked, spec)
        elif kind == "vm":
            await self.vm(tracked, spec)
        elif kind == "cluster":
            await self.cluster(tracked, spec)
        else:
            await self.job(tracked, spec)

    # Reboots ------------------------------------------------------------------------

    async def boot_time(self, nodeid: str) -> int | None:
        """:returns: the node's ``bootTime`` now, or ``None`` when it does not tell."""
        try:
            info = await self._ask("node_info", "get_node_os_info", nodeid)
        except TIMEOUTS:
            return None
        except errors.RpoolError:
            return None
        value = info.get("bootTime") if isinstance(info, Mapping) else None
        return int(value) if isinstance(value, int | float) else None

    async def reboot(self, tracked: Tracked, spec: dict[str, Any]) -> None:
        nodeid = str(spec["nodeid"])
        before, since = spec.get("boot_time"), float(spec.get("since", 0))
        tracked.cannot_cancel("a reboot cannot be stopped")
        pause = FIRST_PAUSE
        while now() < float(spec["deadline"]):
            try:
                info = await self._ask("node_info", "get_node_os_info", nodeid)
            except (errors.RpoolError, *TIMEOUTS) as e:  # type: ignore[misc]
                if not spec.get("away"):
                    spec["away"] = True
                    tracked.record["target"] = dict(spec)
                    tracked.step("node away", {"reason": getattr(e, "message", None) or "no answer"})
                    await self.nodes.seen(nodeid, "halted", "rebooting")
            else:
                boot = info.get("bootTime") if isinstance(info, Mapping) else None
                booted = (isinstance(boot, int | float) and before is not None and boot != before
                          and boot >= int(since) - 1)
                if booted or spec.get("away"):
                    tracked.step("node back", {"bootTime": boot})
                    await self.nodes.seen(nodeid, "running")
                    return
            await self._pause(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
        raise errors.BackendTimeout(
            f"node '{nodeid}' did not answer again within {self.settings.reboot_timeout:g} s "
            "of its reboot")

    # VMs ------------------------------------------------------------------------------

    async def vm(self, tracked: Tracked, spec: dict[str, Any]) -> None:
        nodeid, vmid, target = str(spec["nodeid"]), str(spec["vmid"]), str(spec["target"])
        source = spec.get("from")
        tracked.cannot_cancel("a VM's transition cannot be stopped")
        last = spec.get("seen")
        pause = FIRST_PAUSE
        while now() < float(spec["deadline"]):
            where = nodeid
            try:
                view = await self._ask("vms", "get_vm", nodeid, vmid)
            except errors.NotFound:
                if source is None:
                    raise
                # Not on the target yet: how it is on the node it leaves.
                where = str(source)
                view = await self._ask("vms", "get_vm", where, vmid)
            except TIMEOUTS:
                view = None
            status = str(view.get("status", "")) if isinstance(view, Mapping) else None
            if status is not None and status != last:
                last = spec["seen"] = status
                tracked.record["target"] = dict(spec)
                tracked.step(f"vm {status}", {"state": status, "node": where})
                await self.hub.emit("vm.state", f"/nodes/{where}/vms/{vmid}",
                                    {"state": status, "operation": tracked.id})
            if status == target and where == nodeid:
                return
            if status == "error":
                raise errors.BackendError(f"vm '{vmid}' is in error instead of {target}")
            await self._pause(pause)
            pause = min(pause * 2, LONGEST_PAUSE / 2)
        raise errors.BackendTimeout(
            f"vm '{vmid}' did not become {target} within {self.settings.transition_timeout:g} s "
            f"(last seen {last or 'nowhere'})")

    # Storage clusters -----------------------------------------------------------------

    async def cluster(self, tracked: Tracked, spec: dict[str, Any]) -> None:
        label = str(spec["label"])
        tracked.cannot_cancel("a storage cluster's deployment cannot be stopped")
        last = spec.get("seen")
        pause = FIRST_PAUSE
        while now() < float(spec["deadline"]):
            try:
                view = await self._ask("storageclusters", "get_cluster_info", label)
            except TIMEOUTS:
                view = None
            status = str(view.get("status", "")) if isinstance(view, Mapping) else None
            if status is not None and status != last:
                last = spec["seen"] = status
                tracked.step(f"storage cluster {status}", {"state": status})
                await self.hub.emit("storagecluster.changed", f"/storageclusters/{label}",
                                    {"status": status, "operation": tracked.id})
            if status == "ready":
                return
            if status == "error":
                raise errors.BackendError(f"storage cluster '{label}' is in error")
            await self._pause(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
        raise errors.BackendTimeout(
            f"storage cluster '{label}' was not ready within {self.settings.transition_timeout:g} s")

    # Jobs -----------------------------------------------------------------------------

    async def job(self, tracked: Tracked, spec: dict[str, Any]) -> None:
        nodeid, container, jobid = str(spec["nodeid"]), str(spec["containername"]), str(spec["jobid"])
        resource = f"/nodes/{nodeid}/containers/{container}/jobs/{jobid}"

        async def kill() -> None:
            await self._ask("container_jobs", "kill_container_job", nodeid, container, jobid)

        tracked.on_cancel(kill)
        tracked.step("job started", {"job": jobid})
        pause = FIRST_PAUSE
        while now() < float(spec["deadline"]):
            try:
                view = await self._ask("container_jobs", "get_container_job", nodeid, container, jobid)
            except TIMEOUTS:
                view = None
            state = str(view.get("state", "")) if isinstance(view, Mapping) else "running"
            if state != "running":
                tracked.cannot_cancel("its job has ended")
                tracked.step(f"job {state}", {"state": state})
                await self.hub.emit("job.ended", resource, {"state": state, "operation": tracked.id})
                if state == "success" or tracked.cancelling:
                    return
                stderr = str(view.get("stderr", "")).strip().splitlines() if isinstance(view, Mapping) else []
                raise errors.BackendError(f"job '{jobid}' ended {state}"
                                          + (f": {stderr[-1]}" if stderr else ""))
            await self._pause(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
        raise errors.BackendTimeout(f"job '{jobid}' still runs after {self.settings.retention:g} s")


class NodeWatcher(Service):
    """
    Looks at every node every ``interval`` seconds: the status
    ``GET /nodes`` gives (a ping within the backend's ``ping_timeout``), or
    the answer of ``ping_node`` where another backend than the nodes' one
    serves the nodes' agents (the AYS split); each change is a
    ``node.status`` event.

    :param routing: the backend serving each family.
    :param nodes: the nodes' status.
    :param interval: seconds between two looks (0: never).
    """

    def __init__(self, routing: Mapping[str, object], nodes: NodeStatus, clock: Any,
                 interval: float) -> None:
        self.routing = routing
        self.nodes = nodes
        self.clock = clock
        self.interval = interval
        self._timer: Any = None
        self._looking: Deferred[Any] | None = None

    def startService(self) -> None:
        super().startService()
        if self.interval > 0 and "nodes" in self.routing:
            self._timer = self.clock.callLater(0, self._look)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._looking is not None:
            self._looking.cancel()
        d: Deferred[None] = Deferred()
        d.callback(None)
        return d

    def _look(self) -> None:
        self._timer = None
        self._looking = ensureDeferred(self.look())

        def again(_: Any) -> None:
            self._looking = None
            if self.running:
                self._timer = self.clock.callLater(self.interval, self._look)

        self._looking.addErrback(lambda failure: log.warn("nodes: looking at them failed: {why}",
                                                          why=failure.getErrorMessage()))
        self._looking.addBoth(again)

    async def look(self) -> None:
        """Look at every node once."""
        nodes: Any = self.routing["nodes"]
        listed = await _bounded(nodes.list_nodes(), max(PROBE_TIMEOUT, self.interval), self.clock)
        agents: Any = self.routing.get("node_info")
        separate = agents is not None and agents is not nodes
        statuses: list[tuple[str, str]] = []
        if separate:
            ids = [str(n["id"]) for n in listed]
            pings = await DeferredList(
                [_bounded(agents.ping_node(i), min(PROBE_TIMEOUT, self.interval), self.clock)
                 for i in ids], consumeErrors=True)
            statuses = [(i, "running" if ok and up else "halted")
                        for i, (ok, up) in zip(ids, pings, strict=True)]
        else:
            statuses = [(str(n["id"]), "running" if n.get("status") == "running" else "halted")
                        for n in listed]
        for nodeid, status in statuses:
            await self.nodes.seen(nodeid, status)
