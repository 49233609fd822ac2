"""
The core0 backend: every resource family a node's core0 agent can answer
itself, over the agent's Redis protocol.  Not storage clusters and vdisks
(they need more than one node's agent).

The families are the command kit's (``plugins.core0.kit``), run on one
``NodeClient`` per node of the registry; this class builds them, stops the
connections with the daemon and reports health.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, maybeDeferred
from twisted.logger import Logger
from zope.interface import implementer

from plugins.core0.client import NodeClient
from plugins.core0.kit.directory import NodeDirectory
from plugins.core0.kit.families import CommandFamilies, parts_at
from plugins.core0.registry import ForgottenNodes, resolve
from rpoold.delegation import serve
from rpoold.errors import TIMEOUTS, RpoolError
from rpoold.interfaces import IHealthCheck
from rpoold.nodes import NodeAddress
from rpoold.records import IRecords

log = Logger()

#: Most node ids ``/health`` lists as down (``answering`` says how many answer).
DOWN_LISTED = 50


@implementer(IHealthCheck, IService)
class Core0Backend(Service):
    """
    :param options: the ``[backends.<instance>]`` options (see
        ``plugins.backend_core0``), checked and with defaults filled in.
    :param context: the ``IBackendContext``.
    """

    def __init__(self, options: dict[str, Any], context: Any) -> None:
        self.reactor = context.reactor
        self.pool_size = int(options.get("pool_size", 8))
        self.timeout = float(options.get("timeout", 10.0))
        self.ping_timeout = float(options.get("ping_timeout", 1.0))
        self.health_timeout = float(options.get("health_timeout", 2.0))
        self.records: IRecords = context.records
        self.forgotten = ForgottenNodes(self.records)
        self.registry = resolve(options, context, self.forgotten)
        self.directory: NodeDirectory[NodeClient] = NodeDirectory(
            self.registry, self._connect, self.ping_timeout)
        self.families = CommandFamilies(
            self.directory, self.records, self.reactor, timeout=self.timeout,
            ping_timeout=self.ping_timeout,
            transition_seconds=float(options.get("transition_seconds", 0.1)),
            container_cache_seconds=float(options.get("container_cache_seconds", 300.0)))

    def _connect(self, address: NodeAddress) -> NodeClient:
        return NodeClient(address, pool_size=self.pool_size, timeout=self.timeout, reactor=self.reactor)

    def startService(self) -> None:
        super().startService()
        ensureDeferred(self.forgotten.load()).addErrback(
            lambda failure: log.failure("core0: reading the forgotten nodes failed", failure))
        ensureDeferred(self.families.resume()).addErrback(
            lambda failure: log.failure("core0: resuming the VMs in a passing state failed", failure))

    def stopService(self) -> Deferred[None]:
        """
        Close every connection to the nodes.

        :returns: Deferred firing once they are closed.
        """
        super().stopService()
        count = len(self.directory.clients())

        def closed(_: Any) -> None:
            log.info("core0: closed the connections to {count} node(s)", count=count)

        return self.directory.close().addCallback(closed)

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
        pings = [self.directory.client_of(node).ping(self.ping_timeout) for node in nodes]
        answers = await DeferredList(pings, consumeErrors=True)
        down = [node.id for node, (ok, up) in zip(nodes, answers, strict=True) if not (ok and up)]
        return {
            "ok": not down,
            "nodes": len(nodes),
            "answering": len(nodes) - len(down),
            "down": down[:DOWN_LISTED],
            "connections": sum(c.pool.ready for c in self.directory.clients()),
        }


serve(Core0Backend, parts_at("families"))
