"""
The simulated pool (``plugins.poolsim``) where the API does not reach: job
lifecycle and results, the simulated programs, file descriptors, reboot,
and the limits a real node has (which the model keeps too, whatever the
client).  Time is a ``Clock`` moved by hand.
"""

from __future__ import annotations

import base64

import pytest
from twisted.internet.task import Clock

import rpoold.contract
from plugins.poolsim import agent as agent_module
from plugins.poolsim import node as node_module
from plugins.poolsim.agent import Agent
from plugins.poolsim.files import DESCRIPTOR_IDLE_SECONDS, READ_BLOCK, SimFilesystem
from plugins.poolsim.jobs import SIGNALS, SIGNALS_KEPT, CommandError, Job
from plugins.poolsim.pool import SEED_CONTAINER_ID, SEED_JOB, SEED_NODE, Pool


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.advance(1_700_000_000)
    return clock


@pytest.fixture
def agent(clock: Clock) -> Agent:
    return Agent(clock, "box")


def run(agent: Agent, program: str, *args: str, **extra: object) -> Job:
    return agent.execute("core.system", {"name": program, "args": list(args), **extra})


# Jobs -----------------------------------------------------------------------------------


def test_a_builtin_ends_at_once_with_its_value(agent: Agent) -> None:
    job = agent.execute("core.ping", {})
    assert not job.running and job.result is not None
    assert job.result["state"] == "SUCCESS" and job.result["level"] == 20
    assert job.result["data"].startswith('"PONG')
    assert agent.result_of(job.id) == job.result
    assert job.id not in agent.jobs


def test_a_builtin_error_is_an_error_result(agent: Agent) -> None:
    job = agent.execute("filesystem.open", {"file": "/nosuchfile", "mode": "r"})
    assert job.result is not None and job.result["state"] == "ERROR"
    assert "no such file" in job.result["data"]


def test_unknown_command_and_duplicate_id(agent: Agent) -> None:
    assert agent.execute("no.such", {}).result["state"] == "UNKNOWN_CMD"  # type: ignore[index]
    first = run(agent, "/bin/daemon")
    again = agent.execute("core.ping", {}, job_id=first.id)
    assert again.result is not None and again.result["state"] == "DUPILICATE_ID"
    assert first.running


def test_sleep_lasts_its_seconds(agent: Agent, clock: Clock) -> None:
    job = run(agent, "sleep", "2")
    assert job.running and job.id in [e["cmd"]["id"] for e in agent.job_list()]
    assert job.process is not None and job.process.pid in agent.processes
    clock.advance(1.9)
    assert job.running
    clock.advance(0.2)
    assert job.result is not None and job.result["state"] == "SUCCESS"
    assert job.result["time"] >= 2000
    assert job.process.pid not in agent.processes
    assert agent.job_list() == []


def test_echo_and_exit_status(agent: Agent) -> None:
    job = run(agent, "echo", "hello", "world")
    assert job.result is not None and job.result["streams"] == ["hello world\n", ""]
    job = run(agent, "sh", "-c", "echo a; exit 3; echo never")
    assert job.result is not None
    assert job.result["state"] == "ERROR" and job.result["streams"][0] == "a\n"
    assert run(agent, "false").result["state"] == "ERROR"  # type: ignore[index]
    assert run(agent, "true").result["state"] == "SUCCESS"  # type: ignore[index]


def test_a_script_sleeps_between_statements(agent: Agent, clock: Clock) -> None:
    job = run(agent, "sh", "-c", "echo a\nsleep 1\necho b")
    assert job.running and job.stdout == ["a\n"]
    clock.advance(1)
    assert job.result is not None and job.result["streams"][0] == "a\nb\n"


def test_cat_and_ls(agent: Agent) -> None:
    agent.files.put("/etc/motd", b"one\ntwo\n")
    assert run(agent, "cat", "/etc/motd").result["streams"][0] == "one\ntwo\n"  # type: ignore[index]
    assert run(agent, "cat", stdin="in\n").result["streams"][0] == "in\n"  # type: ignore[index]
    assert "motd\n" in run(agent, "ls", "/etc").result["streams"][0]  # type: ignore[index]
    failed = run(agent, "cat", "/nope").result
    assert failed is not None and failed["state"] == "ERROR" and "/nope" in failed["streams"][1]
    assert run(agent, "sh", "-c", "nosuchprogram").result["state"] == "ERROR"  # type: ignore[index]


def test_a_daemon_runs_until_killed(agent: Agent, clock: Clock) -> None:
    job = run(agent, "/bin/dnsmasq", "-d")
    clock.advance(3600)
    assert job.running
    assert agent.job_kill(job.id, 10)
    assert job.running and job.process is not None and job.process.signals == [10]
    assert agent.job_kill(job.id, 9)
    assert job.result is not None and job.result["state"] == "KILLED"
    assert not agent.job_kill(job.id, 9)


def test_max_time_ends_a_job_with_timeout(agent: Agent, clock: Clock) -> None:
    job = agent.execute("core.system", {"name": "/bin/daemon"}, max_time=5)
    clock.advance(5)
    assert job.result is not None and job.result["state"] == "TIMEOUT"


def test_listeners_hear_starts_and_results(agent: Agent) -> None:
    started: list[str] = []
    ended: list[tuple[str, str]] = []
    agent.start_listeners.append(lambda job: started.append(job.id))
    agent.listeners.append(lambda job, result: ended.append((job.id, result["state"])))
    job = run(agent, "echo", "x")
    assert started == [job.id] and ended == [(job.id, "SUCCESS")]


def test_results_are_kept_for_a_while(agent: Agent, clock: Clock) -> None:
    job = run(agent, "echo")
    clock.advance(agent_module.RESULT_RETENTION_SECONDS - 1)
    assert agent.result_of(job.id) is not None
    clock.advance(2)
    assert agent.result_of(job.id) is None


def test_processes_and_signals(clock: Clock) -> None:
    agent = Pool(clock, nodes=1).nodes[SEED_NODE]
    job = run(agent, "/bin/daemon")
    assert job.process is not None
    pid = job.process.pid
    with pytest.raises(CommandError, match="invalid PID"):
        agent.process_kill(1, 15)
    with pytest.raises(CommandError, match="no such process"):
        agent.process_kill(9999, 15)
    agent.process_kill(pid, 0)
    assert pid in agent.processes
    agent.process_kill(pid, 15)
    assert pid not in agent.processes
    assert job.result is not None and job.result["state"] == "ERROR"
    assert "signal: 15" in job.result["streams"][1]


def test_signals_are_linux_signals_and_only_the_latest_are_kept(clock: Clock) -> None:
    agent = Pool(clock, nodes=1).nodes[SEED_NODE]
    job = run(agent, "/bin/daemon")
    assert job.process is not None
    for bad in (65, 127, -1):
        with pytest.raises(CommandError, match="invalid signal"):
            agent.process_kill(job.process.pid, bad)
        with pytest.raises(CommandError, match="invalid signal"):
            agent.job_kill(job.id, bad)
    for _ in range(SIGNALS_KEPT * 3):
        agent.job_kill(job.id, 10)
    assert job.running and job.process.signals == [10] * SIGNALS_KEPT


def test_kill_all_spares_protected_jobs(clock: Clock) -> None:
    node = Pool(clock, nodes=1).nodes[SEED_NODE]
    daemon = node.execute("core.system", {"name": "/bin/daemon"})
    node.job_killall()
    assert not daemon.running
    assert "redis.public" in node.jobs


# Files ------------------------------------------------------------------------------------


def write(fs: SimFilesystem, fd: str, data: bytes) -> None:
    fs.write(fd, base64.b64encode(data).decode())


def read_all(fs: SimFilesystem, fd: str) -> bytes:
    out = b""
    while True:
        block = base64.b64decode(fs.read(fd))
        if not block:
            return out
        out += block


def test_descriptors_write_then_read(clock: Clock) -> None:
    fs = SimFilesystem(clock)
    fs.mkdir("/data")
    fd = fs.open("/data/f", "w")
    write(fs, fd, b"abc")
    write(fs, fd, b"def")
    fs.close(fd)
    fd = fs.open("/data/f", "r")
    assert read_all(fs, fd) == b"abcdef"
    with pytest.raises(CommandError, match="not open for writing"):
        write(fs, fd, b"x")


def test_reads_come_in_blocks(clock: Clock) -> None:
    fs = SimFilesystem(clock)
    fs.put("/big", b"x" * (READ_BLOCK + 10))
    fd = fs.open("/big", "r")
    assert len(base64.b64decode(fs.read(fd))) == READ_BLOCK
    assert len(base64.b64decode(fs.read(fd))) == 10
    assert fs.read(fd) == ""


def test_open_modes(clock: Clock) -> None:
    fs = SimFilesystem(clock)
    fs.put("/f", b"12345")
    write(fs, fs.open("/f", "wx"), b"ab")
    assert fs.read_all("/f") == b"ab345"
    write(fs, fs.open("/f", "a"), b"!")
    assert fs.read_all("/f") == b"ab345!"
    fs.open("/f", "w")
    assert fs.read_all("/f") == b""
    with pytest.raises(CommandError, match="file exists"):
        fs.open("/f", "x")
    with pytest.raises(CommandError, match="no such file"):
        fs.open("/missing/dir/f", "w")
    with pytest.raises(CommandError, match="is a directory"):
        fs.open("/", "r")
    with pytest.raises(CommandError, match="once and only once"):
        fs.open("/f", "rw")


def test_bad_writes_and_unknown_descriptors(clock: Clock) -> None:
    fs = SimFilesystem(clock)
    fd = fs.open("/f", "w")
    with pytest.raises(CommandError, match="base64"):
        fs.write(fd, "not base64!")
    with pytest.raises(CommandError, match="unknown file description"):
        fs.read("nosuchfd")


def test_idle_descriptors_expire(clock: Clock) -> None:
    fs = SimFilesystem(clock)
    fd = fs.open("/f", "w")
    clock.advance(DESCRIPTOR_IDLE_SECONDS - 1)
    write(fs, fd, b"still open")
    clock.advance(DESCRIPTOR_IDLE_SECONDS + 1)
    with pytest.raises(CommandError, match="unknown file description"):
        write(fs, fd, b"too late")


def test_remove_and_move(clock: Clock) -> None:
    fs = SimFilesystem(clock)
    fs.put("/a/b/c", b"1")
    fs.move("/a", "/z")
    assert fs.read_all("/z/b/c") == b"1" and not fs.exists("/a/b/c")
    fs.remove("/z")
    assert not fs.exists("/z/b/c") and not fs.exists("/z")


# Reboot ----------------------------------------------------------------------------------


def test_reboot_takes_the_node_away_for_a_while(clock: Clock) -> None:
    node = Pool(clock, nodes=1, reboot_seconds=2.0).nodes[SEED_NODE]
    boot = node.boot_time
    daemon = node.execute("core.system", {"name": "/bin/daemon"})
    node.reboot()
    assert node.status == "halted"
    assert not daemon.running
    waiting = node.when_running()
    assert not waiting.called
    clock.advance(2.0)
    assert node.status == "running" and waiting.called
    assert node.boot_time > boot
    assert node.when_running().called
    container = node.containers[SEED_CONTAINER_ID]
    assert SEED_JOB in container.jobs
    assert "redis.public" in node.jobs


def test_the_reboot_command_never_answers(clock: Clock) -> None:
    """``core.reboot`` runs until the reboot kills it; its result is never published."""
    node = Pool(clock, nodes=1, reboot_seconds=1.0).nodes[SEED_NODE]
    published: list[str] = []
    node.listeners.append(lambda job, result: published.append(job.command))
    job = node.execute("core.reboot", {})
    assert job.running and node.status == "running"
    clock.advance(0)
    assert node.status == "halted"
    assert job.result is not None and job.result["state"] == "KILLED"
    assert "core.reboot" not in published
    clock.advance(1.0)
    assert node.running


def test_a_waiter_may_give_up(clock: Clock) -> None:
    node = Pool(clock, nodes=1).nodes[SEED_NODE]
    node.reboot()
    waiting = node.when_running()
    waiting.cancel()
    waiting.addErrback(lambda f: None)
    clock.advance(5)
    assert node.running


# The pool as the command kit sees it (plugins.poolsim.local) ----------------------------


def test_local_clients_and_registry_keep_the_contracts(clock: Clock) -> None:
    from zope.interface.verify import verifyObject

    from plugins.poolsim.local import SimulatedRegistry
    from rpoold.nodes import ICommandClient, INodeRegistry

    registry = SimulatedRegistry(Pool(clock, nodes=1))
    assert verifyObject(INodeRegistry, registry)
    client = registry.connect(registry.lookup(SEED_NODE))
    assert verifyObject(ICommandClient, client)


def test_a_local_client_answers_as_a_node_would(clock: Clock) -> None:
    from plugins.core0.protocol import CommandFailed
    from plugins.poolsim.local import SimulatedRegistry

    pool = Pool(clock, nodes=1, reboot_seconds=2.0)
    registry = SimulatedRegistry(pool)
    client = registry.connect(registry.lookup(SEED_NODE))
    answers: list[object] = []
    client.call("info.mem").addCallback(answers.append)
    assert answers[0]["total"] > 0  # type: ignore[index]
    client.call("bridge.delete", {"name": "nosuch"}).addErrback(lambda f: answers.append(f.value))
    assert isinstance(answers[1], CommandFailed) and answers[1].state == "ERROR"
    # A container job's result is read back from the node, as from its Redis.
    client.dispatch(SEED_CONTAINER_ID, "info.os", wait=False).addCallback(answers.append)
    job = answers[2]
    client.peek(job).addCallback(answers.append)  # type: ignore[arg-type]
    flagged, found = answers[3]  # type: ignore[misc]
    assert flagged and found.command == "info.os"
    # A rebooting node: no ping at once, commands wait for it.
    client.submit("core.reboot")
    clock.advance(0)
    client.ping(0).addCallback(answers.append)
    assert answers[4] is False
    client.call("info.mem").addCallback(answers.append)
    assert len(answers) == 5
    clock.advance(2.0)
    assert answers[5]["total"] > 0  # type: ignore[index]


# Limits of a real node -----------------------------------------------------------------


def _bounds(type_name: str, field: str) -> dict[str, object]:
    spec = rpoold.contract.load()["types"][type_name]
    return next(dict(f) for f in spec["fields"] if f["name"] == field)


def test_the_model_refuses_what_the_contract_refuses() -> None:
    """The model's limits are the node's; the contract's bounds are chosen to be the same."""
    assert _bounds("VMCreate", "cpu")["maximum"] == node_module.KVM_MAX_VCPUS
    assert _bounds("VMCreate", "memory")["maximum"] == node_module.VM_MAX_MEMORY_MIB
    assert _bounds("VMCreate", "nics")["maxItems"] == node_module.PCI_SLOTS
    assert _bounds("VMCreate", "disks")["maxItems"] == node_module.PCI_SLOTS
    assert _bounds("BridgeCreate", "name")["maxLength"] == node_module.IFNAME_MAX
    assert _bounds("CreateContainer", "hostname")["maxLength"] == node_module.HOST_NAME_MAX
    assert _bounds("ProcessSignal", "signal")["maximum"] == max(SIGNALS)
    rules = rpoold.contract.load()["validators"]
    assert rules["vlan_tag"]["range"] == [node_module.VLAN_TAGS[0], node_module.VLAN_TAGS[-1]]
    assert rules["vxlan_id"]["range"] == [node_module.VXLAN_IDS[0], node_module.VXLAN_IDS[-1]]
    assert rules["port_mapping"]["range"] == [node_module.PORTS[0], node_module.PORTS[-1]]


def test_interface_names_are_at_most_15_bytes(clock: Clock) -> None:
    node = Pool(clock, nodes=1).nodes[SEED_NODE]
    node.bridge_create("b" * 15)
    for name in ("b" * 16, "b" * 300, "é" * 8, "a b", "a/b"):
        with pytest.raises(CommandError, match="not a valid interface name"):
            node.bridge_create(name)
    assert node.bridge_list() == sorted(["core0", "b" * 15])


def test_a_vm_gets_at_most_what_kvm_gives(clock: Clock) -> None:
    node = Pool(clock, nodes=1).nodes[SEED_NODE]
    for cpu, memory in ((1_000_000, 128), (0, 128), (1025, 128), (1, 0), (1, 64 * 1024 * 1024 + 1)):
        with pytest.raises(CommandError, match="invalid"):
            node.kvm_create(f"vm{cpu}_{memory}", cpu=cpu, memory=memory)
    with pytest.raises(CommandError, match="PCI slots"):
        node.kvm_create("many", nics=[{"type": "default"}] * 33)
    uuid = node.kvm_create("biggest", cpu=1024, memory=64 * 1024 * 1024)
    assert len(node.kvm_infops(uuid)["vcpu"]) == 1024
    assert not node.domains.keys() - {"biggest"}


@pytest.mark.parametrize(("nic", "accepted"), [
    ({"type": "vlan", "id": "0"}, True),
    ({"type": "vlan", "id": "4094"}, True),
    ({"type": "vlan", "id": "4095"}, False),
    ({"type": "vlan", "id": "ten"}, False),
    ({"type": "vxlan", "id": "16777215"}, True),
    ({"type": "vxlan", "id": "16777216"}, False),
    ({"type": "zerotier", "id": "8056c2e21c000001"}, True),
    ({"type": "zerotier", "id": "AAA"}, False),
])
def test_nic_ids_are_what_linux_takes(clock: Clock, nic: dict[str, str], accepted: bool) -> None:
    node = Pool(clock, nodes=1).nodes[SEED_NODE]
    create = {"root": "https://hub/x.flist", "nics": [nic]}
    if accepted:
        node.corex_create(**create)
        if nic["type"] != "zerotier":  # a VM has no zerotier nic
            node.kvm_create("vm", nics=[nic])
    else:
        with pytest.raises(CommandError, match="invalid"):
            node.corex_create(**create)


def test_port_mappings_and_hostnames(clock: Clock) -> None:
    node = Pool(clock, nodes=1).nodes[SEED_NODE]
    node.corex_create(root="https://hub/x.flist", port={"1": 65535}, hostname="h" * 64)
    for port in ({"0": 22}, {"22": 65536}, {"x": 22}):
        with pytest.raises(CommandError, match="invalid port mapping"):
            node.corex_create(root="https://hub/x.flist", port=port)
    with pytest.raises(CommandError, match="hostname"):
        node.corex_create(root="https://hub/x.flist", hostname="h" * 65)
