"""
Readable commands for containers: ``rpool containers NODE``, ``rpool
container show|create|delete|start|stop|jobs|processes NODE NAME`` and
``rpool exec NODE CONTAINER -- CMD ARGS`` (a process started and followed
to its end, its output printed).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import click

from rpool.exits import UsageProblem
from rpool.jobs import Printer, check_ended, follow_job
from rpool.options import apply_fields, json_option, pair, read_body, session_of
from rpool.session import DEFAULT_WAIT_TIMEOUT
from rpool.waiting import Waiter

#: Keys of a ``--nic`` after its ``TYPE[:ID]``, and where they go.
NIC_KEYS = {"hwaddr": "nic", "status": "nic", "cidr": "config", "gateway": "config",
            "dns": "config", "dhcp": "config"}


def parse_nic(text: str) -> dict[str, Any]:
    """
    A ``--nic``: ``TYPE[:ID][,KEY=VALUE...]``, the keys ``cidr``,
    ``gateway``, ``dns`` (repeatable), ``dhcp`` (or ``dhcp`` alone),
    ``hwaddr``, ``status``.  ``vlan:100,cidr=10.0.0.5/24,gateway=10.0.0.1``.

    :raises UsageProblem: an unknown key.
    """
    head, *rest = text.split(",")
    kind, _, ident = head.partition(":")
    if not kind:
        raise UsageProblem(f"--nic {text!r}: expected TYPE[:ID][,KEY=VALUE...]")
    nic: dict[str, Any] = {"type": kind}
    if ident:
        nic["id"] = ident
    config: dict[str, Any] = {}
    for item in rest:
        if item == "dhcp":
            config["dhcp"] = True
            continue
        key, value = pair(item, "--nic")
        if key not in NIC_KEYS:
            raise UsageProblem(f"--nic {text!r}: unknown key '{key}' (known: {', '.join(NIC_KEYS)})")
        if key == "dns":
            config.setdefault("dns", []).append(value)
        elif key == "dhcp":
            config["dhcp"] = value.lower() in ("1", "true", "yes", "on")
        elif NIC_KEYS[key] == "config":
            config[key] = value
        else:
            nic[key] = value
    if config:
        nic["config"] = config
    return nic


@click.command("containers")
@click.argument("nodeid", metavar="NODE")
@json_option
@click.pass_context
def containers(ctx: click.Context, nodeid: str) -> None:
    """List the containers of NODE."""
    session = session_of(ctx)
    listed = session.send("ListContainers", {"nodeid": nodeid}).outcome.body or []
    if not listed:
        session.output.empty("containers")
        return
    if not session.output.json:
        # 'id' repeats 'name' (for readers of the original documentation).
        listed = [{k: v for k, v in item.items() if k != "id" or "name" not in item} for item in listed]
    session.output.data(listed, columns=("name", "status", "hostname", "flist"))


@click.group("container")
def container() -> None:
    """One container: show, create, delete, start, stop, its jobs and processes."""


def _path(nodeid: str, name: str) -> dict[str, str]:
    return {"nodeid": nodeid, "containername": name}


@container.command("show")
@click.argument("nodeid", metavar="NODE")
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, nodeid: str, name: str) -> None:
    """The container NAME of NODE (GetContainer)."""
    session = session_of(ctx)
    session.output.data(session.send("GetContainer", _path(nodeid, name)).outcome.body)


@container.command("create")
@click.argument("nodeid", metavar="NODE")
@click.argument("name")
@click.option("--flist", help="The root filesystem's flist URL (required unless in --body).")
@click.option("--hostname", help="Its hostname (default: NAME).")
@click.option("--nic", "nics", multiple=True, metavar="TYPE[:ID][,KEY=VALUE...]",
              help="A network interface: default, bridge:NAME, zerotier:NWID, vlan:TAG, vxlan:ID; "
                   "keys cidr=, gateway=, dns= (repeatable), dhcp, hwaddr=. Repeatable.")
@click.option("--port", "ports", multiple=True, metavar="HOST:CONTAINER", help="A port forward. Repeatable.")
@click.option("--fs", "filesystems", multiple=True, metavar="POOL:FILESYSTEM",
              help="A filesystem to mount at /fs/POOL/FILESYSTEM. Repeatable.")
@click.option("--host-network", is_flag=True, help="Share the node's network.")
@click.option("--storage", help="The storage URL its flist is read from.")
@click.option("--body", "-b", metavar="@FILE|JSON|-", help="A CreateContainer body the options add to.")
@click.option("--field", "-f", "fields", multiple=True, metavar="KEY=VALUE", help="Set a body field.")
@json_option
@click.pass_context
def create(ctx: click.Context, nodeid: str, name: str, flist: str | None, hostname: str | None,
           nics: tuple[str, ...], ports: tuple[str, ...], filesystems: tuple[str, ...],
           host_network: bool, storage: str | None, body: str | None, fields: tuple[str, ...]) -> None:
    """
    Create the container NAME on NODE (CreateContainer).

    \b
    Example:
      rpool container create 525400123456 web1 --flist https://hub.example.org/ubuntu.flist \\
          --nic default --nic vlan:100,cidr=192.168.57.217/24,gateway=192.168.57.254 --port 8080:80
    """
    session = session_of(ctx)
    spec: Any = read_body(body) if body else {}
    if not isinstance(spec, dict):
        raise UsageProblem("--body: a CreateContainer body is a JSON object")
    spec["name"] = name
    spec.setdefault("hostname", hostname or name)
    if hostname:
        spec["hostname"] = hostname
    if flist:
        spec["flist"] = flist
    if "flist" not in spec:
        raise UsageProblem("container create needs --flist (or a body with 'flist')")
    if nics:
        spec["nics"] = [parse_nic(n) for n in nics]
    if ports:
        spec["ports"] = list(ports)
    if filesystems:
        spec["filesystems"] = list(filesystems)
    if host_network:
        spec["hostNetworking"] = True
    if storage:
        spec["storage"] = storage
    spec = apply_fields(spec, fields)
    sent = session.send("CreateContainer", {"nodeid": nodeid}, body=spec, wait=True,
                        label=f"creating container {name} on {nodeid}")
    location = sent.outcome.location
    session.output.done(f"container {name} created on {nodeid}",
                        {"status": sent.outcome.status, "location": location, "name": name})


def _simple(name: str, op_id: str, done: str, text: str) -> click.Command:
    @click.command(name, help=f"{text} ({op_id}).")
    @click.argument("nodeid", metavar="NODE")
    @click.argument("container_name", metavar="NAME")
    @json_option
    @click.pass_context
    def command(ctx: click.Context, nodeid: str, container_name: str) -> None:
        session = session_of(ctx)
        sent = session.send(op_id, _path(nodeid, container_name), wait=True,
                            label=f"{name} container {container_name}")
        session.output.done(f"container {container_name} {done}",
                            {"status": sent.outcome.status, "name": container_name})

    return command


container.add_command(_simple("delete", "DeleteContainer", "deleted", "Delete the container NAME of NODE"))
container.add_command(_simple("start", "StartContainer", "started", "Start the container NAME of NODE"))
container.add_command(_simple("stop", "StopContainer", "stopped", "Stop the container NAME of NODE"))


def _listing(name: str, op_id: str, text: str) -> click.Command:
    @click.command(name, help=f"{text} ({op_id}).")
    @click.argument("nodeid", metavar="NODE")
    @click.argument("container_name", metavar="NAME")
    @json_option
    @click.pass_context
    def command(ctx: click.Context, nodeid: str, container_name: str) -> None:
        session = session_of(ctx)
        listed = session.send(op_id, _path(nodeid, container_name)).outcome.body or []
        if listed:
            session.output.data(listed, columns=("id", "pid", "cmdline", "startTime"))
        else:
            session.output.empty(name)

    return command


container.add_command(_listing("jobs", "ListContainerJobs", "Jobs running in the container NAME of NODE"))
container.add_command(_listing("processes", "ListContainerProcesses",
                               "Processes of the container NAME of NODE"))


@click.command("exec")
@click.argument("nodeid", metavar="NODE")
@click.argument("container_name", metavar="CONTAINER")
@click.argument("command", nargs=-1, required=True, metavar="-- CMD [ARGS]...")
@click.option("--env", "-e", "environment", multiple=True, metavar="KEY=VALUE",
              help="An environment variable of the process. Repeatable.")
@click.option("--cwd", "pwd", metavar="DIR", help="Its working directory.")
@click.option("--stdin", metavar="TEXT|@FILE", help="What it reads on stdin.")
@click.option("--detach", "-d", is_flag=True, help="Start it and print its job; do not follow it.")
@click.option("--wait-timeout", type=click.FloatRange(min=0.1), default=DEFAULT_WAIT_TIMEOUT,
              show_default=True, metavar="SECONDS", help="How long to follow it (then exit code 7).")
@json_option
@click.pass_context
def exec_(ctx: click.Context, nodeid: str, container_name: str, command: tuple[str, ...],
          environment: tuple[str, ...], pwd: str | None, stdin: str | None, detach: bool,
          wait_timeout: float) -> None:
    """
    Run CMD ARGS in CONTAINER of NODE and print its output.

    Starts the process (StartContainerProcess), follows its job to its
    end (through the server's output stream when it has one, else reading
    the job) and prints its stdout and stderr on rpool's own.  The exit
    status is 0 when the job ended in success, 3 otherwise.  Put -- before
    CMD: what follows it is the command's, not rpool's.

    \b
    Example:
      rpool exec 525400123456 vfw_21 -- ls -l /etc
    """
    session = session_of(ctx)
    for item in environment:
        pair(item, "--env")
    body: dict[str, Any] = {"name": command[0], "args": list(command[1:])}
    if environment:
        body["environment"] = list(environment)
    if pwd:
        body["pwd"] = pwd
    if stdin is not None:
        try:
            body["stdin"] = Path(stdin[1:]).read_text() if stdin.startswith("@") else stdin
        except OSError as e:
            raise UsageProblem(f"--stdin {stdin}: {e.strerror or e}") from None
    sent = session.send("StartContainerProcess", _path(nodeid, container_name), body=body)
    location = sent.outcome.location or ""
    jobid = location.rstrip("/").rsplit("/", 1)[-1]
    if not jobid:
        raise UsageProblem("the server did not say which job runs the process (no Location)")
    if detach:
        session.output.done(f"started job {jobid}", {"status": sent.outcome.status, "job": jobid,
                                                     "location": location})
        return
    # With --json the job (its output included) is the only thing on stdout.
    printer = Printer(io.StringIO(), io.StringIO()) if session.output.json else Printer()
    with Waiter(f"{command[0]} in {container_name}", wait_timeout) as waiter:
        job = follow_job(session, nodeid, container_name, jobid, waiter, printer)
    if session.output.json:
        session.output.raw_json(job)
    check_ended(job)
