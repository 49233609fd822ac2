"""
The core0 simulator's node list as node services: reading the file,
seeding when it appears, registering the seed container, re-seeding on
reset.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from plugins.ayssim.nodelist import NodeListSeeder
from plugins.ayssim.simulator import Simulator
from plugins.core0sim.nodelist import NodeEntry, NodeListError
from plugins.core0sim.nodelist import read as read_node_list
from plugins.poolsim.pool import SEED_CONTAINER, SEED_FLIST, Pool
from tests.support.ayssim import FIRST_PORT, REPO, ModelNodeCommands
from tests.support.polling import wait_for

NODES = f"""
[[nodes]]
id = "525400123456"
host = "127.0.0.1"
port = {FIRST_PORT}
hostname = "core0node"

[[nodes]]
id = "525400123457"
host = "127.0.0.1"
port = {FIRST_PORT + 1}
db = 2
password = "secret"
"""


def test_read_node_list(tmp_path: Path) -> None:
    path = tmp_path / "nodes.toml"
    path.write_text(NODES + '[[nodes]]\nid = "525400123458"\nhost = "10.0.0.3"\n')
    assert read_node_list(str(path)) == [
        NodeEntry("525400123456", "127.0.0.1", FIRST_PORT, 0, "core0node", ""),
        NodeEntry("525400123457", "127.0.0.1", FIRST_PORT + 1, 2, "", "secret"),
        NodeEntry("525400123458", "10.0.0.3", 6379),
    ]


@pytest.mark.parametrize(("text", "problem"), [
    ("[[nodes]]\nid = 'a'\nport = 1\n", "nodes[0]: host is required"),
    ("[[nodes]]\nid = 'a'\nhost = 'h'\nport = '1'\n", "nodes[0]: port must be an integer"),
    ("[[nodes]]\nid = 1\nhost = 'h'\nport = 1\n", "nodes[0]: id must be a string"),
    ("nodes = 3\n", "'nodes' must be an array"),
    ("[[nodes]\n", "nodes.toml"),
])
def test_bad_node_lists(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "nodes.toml"
    path.write_text(text)
    with pytest.raises(NodeListError, match=problem.replace("[", "\\[").replace("]", "\\]")):
        read_node_list(str(path))


@pytest_twisted.ensureDeferred
async def test_seeder_follows_the_file(tmp_path: Path) -> None:
    pool = Pool(reactor, nodes=2)
    sim = Simulator(ModelNodeCommands(pool), default_repository=REPO, poll_interval=0.01)
    path = tmp_path / "nodes.toml"
    seeder = NodeListSeeder(sim, str(path), REPO, interval=0.02)
    seeder.startService()
    try:
        repo = sim.repositories[REPO]
        assert repo.services == []
        path.write_text(NODES)
        await wait_for(lambda: repo.find("container", SEED_CONTAINER), "seed container registered")
        node = repo.find("node", "525400123456")
        assert node is not None and node.data["hostname"] == "core0node"
        other = repo.find("node", "525400123457")
        assert other is not None and other.data["redisPassword"] == "secret"
        assert sim.node_address(other).db == 2
        container = repo.find("container", SEED_CONTAINER)
        assert container is not None and container.parent is node
        assert container.data["flist"] == SEED_FLIST and container.data["status"] == "running"
        assert container.data["nics"][0]["type"] == "default"
        assert container.actions["install"] == container.actions["start"] == "ok"

        # A changed file updates the addresses.
        path.write_text(NODES.replace('hostname = "core0node"', 'hostname = "renamed"'))
        await wait_for(lambda: node.data["hostname"] == "renamed", "hostname updated")

        # After a reset the nodes and the seed container are there again.
        sim.reset()
        fresh = sim.repositories[REPO]
        await wait_for(lambda: fresh.find("container", SEED_CONTAINER), "re-seeded")
        assert fresh.find("node", "525400123457") is not None
    finally:
        seeder.stopService()
