"""
Readable commands for nodes: ``rpool nodes``, ``rpool node show|mem|cpus|
disks|nics|info|state|ping|jobs|processes|delete ID`` and ``rpool reboot
ID [--wait]`` (also ``rpool node reboot``).  Each names the operation it
calls by id; its path comes from the server's document.
"""

from __future__ import annotations

import time
from typing import Any

import click

from rpool.exits import ApiError
from rpool.options import json_option, session_of, wait_options
from rpool.session import Session
from rpool.waiting import Waiter

#: ``rpool node WHAT ID``: the operation and its help line.
NODE_VIEWS = {
    "show": ("GetNode", "The node: id, hostname, status, address."),
    "mem": ("GetMemInfo", "Memory of the node."),
    "cpus": ("GetCPUInfo", "CPUs of the node."),
    "disks": ("GetDiskInfo", "Disks of the node."),
    "nics": ("GetNicInfo", "Network interfaces of the node."),
    "info": ("GetNodeOSInfo", "Operating system of the node (boot time, uptime...)."),
    "state": ("GetNodeState", "The core0 agent's own state (cpu, memory)."),
    "ping": ("PingNode", "Ping the node's core0 agent."),
    "jobs": ("ListNodeJobs", "Jobs running on the node."),
    "processes": ("ListNodeProcesses", "Processes of the node."),
}

#: Statuses a node answers with while it is away (core0 unreachable, silent, not ready).
AWAY_STATUSES = (502, 503, 504)


@click.command("nodes")
@json_option
@click.pass_context
def nodes(ctx: click.Context) -> None:
    """List the nodes of the pool."""
    session = session_of(ctx)
    listed = session.send("ListNodes").outcome.body or []
    if not listed:
        session.output.empty("nodes")
        return
    session.output.data(listed, columns=("id", "hostname", "status", "ipaddress"))


@click.group("node")
def node() -> None:
    """One node: its facts, jobs and processes, reboot, delete."""


def _view(name: str, op_id: str, text: str) -> click.Command:
    @click.command(name, help=f"{text}\n\nCalls {op_id}.")
    @click.argument("nodeid", metavar="ID")
    @json_option
    @click.pass_context
    def view(ctx: click.Context, nodeid: str) -> None:
        session = session_of(ctx)
        body = session.send(op_id, {"nodeid": nodeid}).outcome.body
        if isinstance(body, list) and not body:
            session.output.empty(name)
        else:
            session.output.data(body, columns=("id", "name", "pid", "cmdline", "startTime"))

    return view


for _name, (_op, _text) in NODE_VIEWS.items():
    node.add_command(_view(_name, _op, _text))


@node.command("delete")
@click.argument("nodeid", metavar="ID")
@json_option
@click.pass_context
def delete(ctx: click.Context, nodeid: str) -> None:
    """Remove the node from the pool (DeleteNode)."""
    session = session_of(ctx)
    sent = session.send("DeleteNode", {"nodeid": nodeid})
    session.output.done(f"node {nodeid} deleted", {"status": sent.outcome.status, "node": nodeid})


def boot_time(session: Session, nodeid: str) -> int | None:
    """The node's boot time, ``None`` while it does not answer."""
    try:
        info = session.send("GetNodeOSInfo", {"nodeid": nodeid}).outcome.body
    except ApiError as e:
        if e.status in AWAY_STATUSES:
            return None
        raise
    value = (info or {}).get("bootTime")
    return int(value) if isinstance(value, (int, float)) else None


def wait_for_boot(session: Session, nodeid: str, before: int | None, waiter: Waiter) -> int | None:
    """
    Poll the node until it has rebooted: its status was not ``running``
    (or it did not answer) and is again, or its boot time changed.

    :returns: its new boot time.
    :raises TimedOut: not within ``waiter``'s deadline.
    """
    seen_down = False
    while True:
        waiter.check()
        try:
            status = (session.send("GetNode", {"nodeid": nodeid}).outcome.body or {}).get("status")
        except ApiError as e:
            if e.status not in AWAY_STATUSES:
                raise
            status = "unreachable"
        if status == "running":
            booted = boot_time(session, nodeid)
            if booted is not None and ((before is not None and booted != before) or seen_down):
                return booted
            waiter.update("going down" if not seen_down else "booting")
        else:
            seen_down = True
            waiter.update(str(status))
        waiter.pause()


def operation_boot_time(operation: dict[str, Any] | None) -> int | None:
    """
    The boot time rpoold's reboot operation saw when it ended (its last
    step, "node back", carries it); ``None`` without one.
    """
    if not operation or operation.get("status") != "succeeded":
        return None
    for step in reversed(operation.get("steps") or []):
        data = step.get("data") if isinstance(step, dict) else None
        value = data.get("bootTime") if isinstance(data, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def reboot_node(ctx: click.Context, nodeid: str, wait: bool, wait_timeout: float) -> None:
    session = session_of(ctx)
    if not wait:
        sent = session.send("RebootNode", {"nodeid": nodeid})
        session.output.done(f"node {nodeid} is rebooting", {"status": sent.outcome.status, "node": nodeid})
        return
    started = time.monotonic()
    before = boot_time(session, nodeid)
    # With the server's operations this follows the reboot's operation;
    # either way the node itself says when it is back.
    sent = session.send("RebootNode", {"nodeid": nodeid}, wait=True, wait_timeout=wait_timeout,
                        label=f"rebooting {nodeid}")
    booted = operation_boot_time(sent.outcome.operation)
    if booted is None:
        remaining = max(0.1, wait_timeout - (time.monotonic() - started))
        with Waiter(f"rebooting {nodeid}", remaining) as waiter:
            booted = wait_for_boot(session, nodeid, before, waiter)
    seconds = round(time.monotonic() - started, 1)
    result: dict[str, Any] = {"node": nodeid, "status": "running", "bootTime": booted, "seconds": seconds}
    session.output.done(f"node {nodeid} rebooted in {seconds:g} s", result)


def _reboot_command(name: str) -> click.Command:
    @click.command(name)
    @click.argument("nodeid", metavar="ID")
    @wait_options("the node has booted again")
    @json_option
    @click.pass_context
    def reboot(ctx: click.Context, nodeid: str, wait: bool, wait_timeout: float) -> None:
        """
        Reboot node ID (RebootNode).

        With --wait, wait until it is back: its status is running again
        with a new boot time (or, when the server runs operations, its
        operation has ended too).
        """
        reboot_node(ctx, nodeid, wait, wait_timeout)

    return reboot


reboot = _reboot_command("reboot")
node.add_command(_reboot_command("reboot"))
