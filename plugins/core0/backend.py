"""
The core0 backend: every resource family a node's core0 agent can answer
itself, over the agent's Redis protocol.  Not storage clusters and vdisks
(they need more than one node's agent).

The families live in their own modules; this class puts them together,
stops the connections with the daemon and reports health.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred
from twisted.logger import Logger
from zope.interface import implementer

from plugins.core0.containers import ContainerFamilies
from plugins.core0.network import NetworkFamilies
from plugins.core0.storage import StorageFamilies
from plugins.core0.vms import VMFamilies
from rpoold.errors import TIMEOUTS, RpoolError
from rpoold.interfaces import (
    IBridges,
    IContainerFiles,
    IContainerInfo,
    IContainerJobs,
    IContainerProcesses,
    IContainers,
    IFilesystems,
    IHealthCheck,
    INodeInfo,
    INodeJobs,
    INodeProcesses,
    INodes,
    IStoragePools,
    IVMInfo,
    IVMs,
    IZerotiers,
)

log = Logger()

#: Most node ids ``/health`` lists as down (``answering`` says how many answer).
DOWN_LISTED = 50


@implementer(
    INodes, INodeInfo, INodeJobs, INodeProcesses, IBridges, IStoragePools, IFilesystems,
    IZerotiers, IContainers, IContainerInfo, IContainerJobs, IContainerProcesses,
    IContainerFiles, IVMs, IVMInfo, IHealthCheck, IService,
)
class Core0Backend(ContainerFamilies, StorageFamilies, NetworkFamilies, VMFamilies, Service):
    """
    :param options: the ``[backends.<instance>]`` options (see
        ``plugins.backend_core0``), checked and with defaults filled in.
    :param context: the ``IBackendContext``.
    """

    def stopService(self) -> Deferred[None]:
        """
        Close every connection to the nodes.

        :returns: Deferred firing once they are closed.
        """
        super().stopService()
        clients, self.clients = list(self.clients.values()), {}
        closing = DeferredList([c.close() for c in clients], consumeErrors=True)

        def closed(_: Any) -> None:
            log.info("core0: closed the connections to {count} node(s)", count=len(clients))

        return closing.addCallback(closed)

    def check_health(self) -> Deferred[dict[str, Any]]:
        """
        Ping every node the registry knows, all at once.

        :returns: Deferred firing within ``health_timeout`` seconds (plus
            a ping's ``ping_timeout`` at most), never failing, with ``ok``
            (the registry answered and every node answered its ping),
            ``nodes``, ``answering``, ``down`` (ids of the nodes that did
            not answer, at most ``DOWN_LISTED``), ``connections`` (open
            Redis connections), or ``ok: false`` and ``detail`` when the
            registry did not answer.
        """
        return ensureDeferred(self._health())

    async def _health(self) -> dict[str, Any]:
        listing: Deferred[Any] = maybeDeferred(self.registry.list_nodes)
        listing.addTimeout(self.health_timeout, self.reactor)
        try:
            nodes = list(await listing)
        except TIMEOUTS:
            return {"ok": False,
                    "detail": f"the node registry did not answer within {self.health_timeout:g} s"}
        except RpoolError as e:
            return {"ok": False, "detail": f"the node registry did not answer: {e.message}"}
        except Exception:
            log.failure("core0 health: the node registry failed")
            return {"ok": False, "detail": "the node registry failed"}
        pings = [self.client_of(node).ping(self.ping_timeout) for node in nodes]
        answers = await DeferredList(pings, consumeErrors=True)
        down = [node.id for node, (ok, up) in zip(nodes, answers, strict=True) if not (ok and up)]
        return {
            "ok": not down,
            "nodes": len(nodes),
            "answering": len(nodes) - len(down),
            "down": down[:DOWN_LISTED],
            "connections": sum(c.pool.ready for c in self.clients.values()),
        }
