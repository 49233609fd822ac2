"""
The contracts between backends about nodes: where a node is, which nodes a
pool has, and how a node's core0 agent is asked to run commands.

The family interfaces (``rpoold.interfaces``) are what the web app calls;
these are what backends call on each other:

- a *node registry* (``INodeRegistry``) lists the nodes and their
  addresses; the core0 backend reads one from its configuration, from a
  node file, or from another backend that provides
  ``INodeRegistryProvider`` (the AYS backend: nodes from AYS);
- a *command client* (``ICommandClient``) runs core0 commands on one node;
  the core0 command families run on any such client: over Redis for the
  core0 backend, in process for the mock;
- *node agents* (``INodeAgents``) are what the AYS backend asks of nodes
  themselves (their disks, the containers they run), by the address AYS
  has for them.

Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

#: The port of a node's Redis when its source does not say.
DEFAULT_PORT = 6379


@dataclass(frozen=True)
class NodeAddress:
    """
    A node and how to reach its Redis.

    :ivar hostname: what ``GET /nodes`` shows; empty when the source does
        not say (the backend then asks the node, ``info.os``).
    """

    id: str
    host: str
    port: int = DEFAULT_PORT
    password: str = ""
    db: int = 0
    hostname: str = ""

    @property
    def endpoint(self) -> str:
        suffix = f"/{self.db}" if self.db else ""
        return f"{self.host}:{self.port}{suffix}"


class INodeRegistry(Interface):
    """A source of nodes."""

    def list_nodes() -> Deferred[list[NodeAddress]]:
        """
        :returns: Deferred firing with every known node, in a stable order.
        """

    def get_node(nodeid: str) -> Deferred[NodeAddress]:
        """
        :returns: Deferred firing with the node's address.
        :raises NotFound: unknown node.
        """

    def forget_node(nodeid: str) -> Deferred[None]:
        """
        Drop the node from the pool (``DELETE /nodes/{nodeid}``).

        :returns: Deferred firing with ``None``.
        :raises NotFound: unknown node.
        """


class INodeRegistryProvider(Interface):
    """
    A backend that can be another backend's source of nodes (configured as
    ``registry = "<kind>:<instance>"`` in the core0 backend's options).
    """

    def node_registry() -> INodeRegistry:
        """
        :returns: the registry of this backend's nodes (the same object on
            every call).
        """


class ICommandClient(Interface):
    """
    One node's core0 agent: its commands, as the core0 protocol defines
    them (``core0-protocol.md``).

    A *result* below is a core0 result object as
    ``plugins.core0.protocol.Result`` holds it (``id``, ``command``,
    ``state``, ``level``, ``data``, ``streams``, ...).  Every method may
    fail with ``BackendUnavailable`` (the node cannot be reached) or
    ``BackendTimeout`` (no answer within the client's deadline).
    """

    node = Attribute("The node's id (``str``).")

    def call(command: str, arguments: dict[str, Any] | None = None, *,
             timeout: float | None = None) -> Deferred[Any]:
        """
        Run a command and decode its payload.

        :param timeout: the deadline, in seconds (default: the client's).
        :returns: Deferred firing with the result's value (the decoded JSON
            of a built-in).
        :raises CommandFailed: the command ended in another state than
            ``SUCCESS`` (``plugins.core0.protocol``).
        :raises CommandTimedOut: the agent stopped it at its time limit.
        """

    def execute(command: str, arguments: dict[str, Any] | None = None) -> Deferred[Any]:
        """
        Run a command and wait for its result.

        :returns: Deferred firing with the result, whatever its state.
        """

    def submit(command: str, arguments: dict[str, Any] | None = None) -> Deferred[str]:
        """
        Queue a command without waiting for it (``core.reboot`` never
        answers).

        :returns: Deferred firing with the job id once it is queued.
        """

    def dispatch(container: int, command: str, arguments: dict[str, Any] | None = None, *,
                 wait: bool = True, stream: bool = False) -> Deferred[Any]:
        """
        Run a command inside a container (``corex.dispatch``).

        :param container: the container's core0 id.
        :param wait: wait for the inner job's result; when false, answer
            with the inner job's id as soon as it is dispatched.
        :param stream: ask the agent to stream the job's output
            (``stream:<id>``, the later protocol; an agent of 2017 ignores it).
        :returns: Deferred firing with the inner job's result, or its id.
        :raises CommandFailed: the dispatch itself failed (``container does
            not exist``, ...).
        """

    def peek(job_id: str) -> Deferred[tuple[bool, Any]]:
        """
        Read a job without waiting: whether the agent picked it up, and its
        result if it has finished (also a container job's: their results
        are published on the node).

        :returns: Deferred firing with ``(flagged, result or None)``.
        """

    def read_stream(job_id: str, start: int) -> Deferred[list[dict[str, Any]]]:
        """
        Read what the agent streamed of a job's output (``stream:<id>``,
        the later protocol), without taking it away: the entries from
        index ``start`` on, each ``{"core", "command", "message":
        {"message", "epoch", "meta"}}`` (``meta >> 16``: 1 stdout, 2 stderr;
        ``meta & 0x6``: the last, the job has ended).

        :returns: Deferred firing with the entries (``[]``: none yet, or an
            agent that does not stream).
        """

    def ping(timeout: float) -> Deferred[bool]:
        """
        :returns: Deferred firing with ``True`` when the agent answers
            ``core.ping`` within ``timeout`` seconds, ``False`` otherwise;
            it never fails.
        """

    def close() -> Deferred[None]:
        """
        Let go of the node (close connections); later calls fail with
        ``BackendUnavailable``.

        :returns: Deferred firing once it is done.
        """


class INodeAgents(Interface):
    """
    What the AYS backend asks of nodes themselves, at the address it has
    for them (core0's side: ``plugins.core0.agents``).  The answers are in
    the pool's shapes: the asking backend parses no core0 data.
    """

    def disks(node: NodeAddress) -> Deferred[dict[str, dict[str, Any]]]:
        """
        The node's whole disks, as its ``disk.list`` lists them.

        :param node: the node and where its agent is.
        :returns: Deferred firing with each whole disk by ``/dev/<kname>``:
            its ``disk.list`` entry (``name``, ``kname``, ``size`` in
            bytes, ``rota``, ``children``: its partitions, each with
            ``mountpoint`` and ``fstype`` when in use).
        :raises BackendUnavailable: the node cannot be reached.
        :raises BackendTimeout: the node does not answer in time.
        """

    def running_containers(node: NodeAddress, timeout: float) -> Deferred[set[str]]:
        """
        The containers the node runs.

        :param node: the node and where its agent is.
        :param timeout: seconds to wait for the node's answer.
        :returns: Deferred firing with the names (first tags) of the
            containers the node runs.
        :raises BackendUnavailable: the node cannot be reached.
        :raises BackendTimeout: no answer within ``timeout``.
        """

    def close() -> Deferred[Any]:
        """
        Close every connection to the nodes.

        :returns: Deferred firing once they are closed; it never fails.
        """
