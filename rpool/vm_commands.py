"""
Readable commands for VMs: ``rpool vms NODE``, ``rpool vm show|info NODE
ID``, ``rpool vm create NODE ID --cpu --memory [--wait]``, ``rpool vm
start|stop|pause|resume|shutdown|delete NODE ID [--wait]`` and ``rpool vm
migrate NODE ID --to NODE [--wait]``.  ``--wait`` follows the server's
operation when it has them, then reads the VM until its status is the one
asked for (``deploying``, ``starting``, ``halting`` and ``migrating`` pass).
"""

from __future__ import annotations

import time
from typing import Any

import click

from rpool.exits import ApiError, Failed, UsageProblem
from rpool.options import apply_fields, json_option, read_body, session_of, wait_options
from rpool.session import Session
from rpool.waiting import Waiter

#: Statuses a VM passes through.
PASSING = ("deploying", "starting", "halting", "migrating")
#: Where ``--wait`` waits for each command: the VM's status, or ``gone``.
TARGETS = {"create": "running", "start": "running", "resume": "running", "stop": "halted",
           "shutdown": "halted", "pause": "paused", "delete": "gone", "migrate": "running"}


def parse_disk(text: str) -> dict[str, Any]:
    """A ``--disk``: ``VDISKID[,maxIOps=N]`` (``maxIOps`` 2000 unless given)."""
    ident, *rest = text.split(",")
    disk: dict[str, Any] = {"vdiskid": ident, "maxIOps": 2000}
    for item in rest:
        key, _, value = item.partition("=")
        if key != "maxIOps" or not value.isdigit():
            raise UsageProblem(f"--disk {text!r}: expected VDISKID[,maxIOps=N]")
        disk["maxIOps"] = int(value)
    return disk


def parse_vm_nic(text: str) -> dict[str, Any]:
    """A VM ``--nic``: ``TYPE[:ID][,macaddress=MAC]``."""
    head, *rest = text.split(",")
    kind, _, ident = head.partition(":")
    nic: dict[str, Any] = {"type": kind}
    if ident:
        nic["id"] = ident
    for item in rest:
        key, _, value = item.partition("=")
        if key != "macaddress" or not value:
            raise UsageProblem(f"--nic {text!r}: expected TYPE[:ID][,macaddress=MAC]")
        nic["macaddress"] = value
    return nic


def wait_for_status(session: Session, nodeid: str, vmid: str, target: str, waiter: Waiter,
                    appearing: bool = False) -> str:
    """
    Read the VM until its status is ``target`` (``gone``: until it is not
    found; ``appearing``: not found yet is waited for, as on a migration's
    target node).

    :returns: its last status.
    :raises Failed: it went to ``error``, or settled on another status.
    :raises TimedOut: not within the deadline.
    """
    while True:
        waiter.check()
        try:
            found = session.send("GetVM", _vm_path(nodeid, vmid)).outcome.body or {}
        except ApiError as e:
            if e.status == 404 and target == "gone":
                return "gone"
            if e.status == 404 and appearing:
                waiter.update("not there yet")
                waiter.pause()
                continue
            raise
        status = found.get("status")
        if status == target:
            return str(status)
        if status == "error":
            raise Failed(f"VM {vmid} on {nodeid} is in error")
        if status not in PASSING and target != "gone":
            raise Failed(f"VM {vmid} on {nodeid} is {status}, not {target}")
        waiter.update(str(status))
        waiter.pause()


def _vm_path(nodeid: str, vmid: str) -> dict[str, str]:
    return {"nodeid": nodeid, "vmid": vmid}


def _finish(session: Session, sent_status: int, nodeid: str, vmid: str, verb: str, wait: bool,
            wait_timeout: float, started: float) -> None:
    result: dict[str, Any] = {"status": sent_status, "vm": vmid, "node": nodeid}
    if wait:
        remaining = max(0.1, wait_timeout - (time.monotonic() - started))
        with Waiter(f"VM {vmid}: {verb}", remaining) as waiter:
            result["vmStatus"] = wait_for_status(session, nodeid, vmid, TARGETS[verb], waiter,
                                                 appearing=verb == "migrate")
        result["seconds"] = round(time.monotonic() - started, 1)
    word = {"create": "created", "stop": "stopped", "delete": "deleted", "migrate": "migrated",
            "shutdown": "shut down", "pause": "paused"}.get(verb, verb + "ed")
    now = f" ({result['vmStatus']})" if wait and result.get("vmStatus") != "gone" else ""
    session.output.done(f"VM {vmid} {word} on {nodeid}{now}", result)


@click.command("vms")
@click.argument("nodeid", metavar="NODE")
@json_option
@click.pass_context
def vms(ctx: click.Context, nodeid: str) -> None:
    """List the VMs of NODE."""
    session = session_of(ctx)
    listed = session.send("ListVMs", {"nodeid": nodeid}).outcome.body or []
    if listed:
        session.output.data(listed, columns=("id", "status"))
    else:
        session.output.empty("VMs")


@click.group("vm")
def vm() -> None:
    """One VM: show, info, create, start, stop, pause, resume, shutdown, migrate, delete."""


@vm.command("show")
@click.argument("nodeid", metavar="NODE")
@click.argument("vmid", metavar="ID")
@json_option
@click.pass_context
def show(ctx: click.Context, nodeid: str, vmid: str) -> None:
    """The VM ID of NODE (GetVM)."""
    session = session_of(ctx)
    session.output.data(session.send("GetVM", _vm_path(nodeid, vmid)).outcome.body)


@vm.command("info")
@click.argument("nodeid", metavar="NODE")
@click.argument("vmid", metavar="ID")
@json_option
@click.pass_context
def info(ctx: click.Context, nodeid: str, vmid: str) -> None:
    """Live statistics of the VM ID of NODE (GetVMInfo)."""
    session = session_of(ctx)
    session.output.data(session.send("GetVMInfo", _vm_path(nodeid, vmid)).outcome.body)


@vm.command("create")
@click.argument("nodeid", metavar="NODE")
@click.argument("vmid", metavar="ID")
@click.option("--cpu", type=click.IntRange(min=1), help="vCPUs (required unless in --body).")
@click.option("--memory", type=click.IntRange(min=1), metavar="MIB",
              help="Memory in MiB (required unless in --body).")
@click.option("--nic", "nics", multiple=True, metavar="TYPE[:ID][,macaddress=MAC]",
              help="A network interface: default, bridge:NAME, vlan:TAG, vxlan:ID. Repeatable.")
@click.option("--disk", "disks", multiple=True, metavar="VDISKID[,maxIOps=N]", help="A vdisk. Repeatable.")
@click.option("--body", "-b", metavar="@FILE|JSON|-", help="A CreateVM body the options add to.")
@click.option("--field", "-f", "fields", multiple=True, metavar="KEY=VALUE", help="Set a body field.")
@wait_options("the VM runs")
@json_option
@click.pass_context
def create(ctx: click.Context, nodeid: str, vmid: str, cpu: int | None, memory: int | None,
           nics: tuple[str, ...], disks: tuple[str, ...], body: str | None, fields: tuple[str, ...],
           wait: bool, wait_timeout: float) -> None:
    """
    Create (deploy) the VM ID on NODE (CreateVM); --wait until it runs.

    \b
    Example:
      rpool vm create 525400123456 vm1 --cpu 2 --memory 2048 --nic default --wait
    """
    session = session_of(ctx)
    spec: Any = read_body(body) if body else {}
    if not isinstance(spec, dict):
        raise UsageProblem("--body: a CreateVM body is a JSON object")
    spec["id"] = vmid
    for key, value in (("cpu", cpu), ("memory", memory)):
        if value is not None:
            spec[key] = value
        elif key not in spec:
            raise UsageProblem(f"vm create needs --{key} (or a body with '{key}')")
    if nics:
        spec["nics"] = [parse_vm_nic(n) for n in nics]
    if disks:
        spec["disks"] = [parse_disk(d) for d in disks]
    spec = apply_fields(spec, fields)
    started = time.monotonic()
    sent = session.send("CreateVM", {"nodeid": nodeid}, body=spec, wait=wait, wait_timeout=wait_timeout,
                        label=f"deploying VM {vmid}")
    _finish(session, sent.outcome.status, nodeid, vmid, "create", wait, wait_timeout, started)


def _change(verb: str, op_id: str, text: str) -> click.Command:
    @click.command(verb, help=f"{text} ({op_id}).")
    @click.argument("nodeid", metavar="NODE")
    @click.argument("vmid", metavar="ID")
    @wait_options(f"the VM is {TARGETS[verb]}")
    @json_option
    @click.pass_context
    def command(ctx: click.Context, nodeid: str, vmid: str, wait: bool, wait_timeout: float) -> None:
        session = session_of(ctx)
        started = time.monotonic()
        sent = session.send(op_id, _vm_path(nodeid, vmid), wait=wait, wait_timeout=wait_timeout,
                            label=f"VM {vmid}: {verb}")
        _finish(session, sent.outcome.status, nodeid, vmid, verb, wait, wait_timeout, started)

    return command


for _verb, _op, _text in (("start", "StartVM", "Start the VM ID of NODE"),
                          ("stop", "StopVM", "Stop the VM ID of NODE"),
                          ("pause", "PauseVM", "Pause the VM ID of NODE"),
                          ("resume", "ResumeVM", "Resume the VM ID of NODE"),
                          ("shutdown", "ShutdownVM", "Shut the VM ID of NODE down"),
                          ("delete", "DeleteVM", "Delete the VM ID of NODE")):
    vm.add_command(_change(_verb, _op, _text))


@vm.command("migrate")
@click.argument("nodeid", metavar="NODE")
@click.argument("vmid", metavar="ID")
@click.option("--to", "target", required=True, metavar="NODE", help="The node to move it to.")
@wait_options("the VM runs on the target node")
@json_option
@click.pass_context
def migrate(ctx: click.Context, nodeid: str, vmid: str, target: str, wait: bool, wait_timeout: float) -> None:
    """Move the VM ID of NODE to another node (MigrateVM)."""
    session = session_of(ctx)
    started = time.monotonic()
    sent = session.send("MigrateVM", _vm_path(nodeid, vmid), body={"nodeid": target}, wait=wait,
                        wait_timeout=wait_timeout, label=f"migrating VM {vmid} to {target}")
    _finish(session, sent.outcome.status, target, vmid, "migrate", wait, wait_timeout, started)
