"""
The AYS simulator's HTTP surface over real HTTP on loopback: statuses,
bodies and shapes as AYS 8.2 answers them.
"""

from __future__ import annotations

import hashlib

import pytest_twisted

from tests.support.ayssim import REPO, Served

R = f"/ays/repository/{REPO}"
NODE = "525400123456"
OTHER = "525400123457"

CONTAINER = f"""
container__web1:
  node: "{NODE}"
  flist: https://hub.example.org/ubuntu.flist
  hostname: web1
actions:
  - {{action: install, actor: container, service: web1, force: false}}
"""


@pytest_twisted.ensureDeferred
async def test_liveness_answers_200(served: Served) -> None:
    code, _, raw = await served.request("GET", "/")
    assert code == 200 and raw


@pytest_twisted.ensureDeferred
async def test_repository_get_create_conflict(served: Served) -> None:
    code, body, _ = await served.request("GET", R)
    assert code == 200
    assert body == {"name": REPO, "path": f"/optvar/cockpit_repos/{REPO}", "git_url": "not defined"}

    code, body, _ = await served.request("GET", "/ays/repository/other")
    assert (code, body) == (404, {"error": "Repository other doesn't exists"})

    code, body, _ = await served.request(
        "POST", "/ays/repository", {"name": "other", "git_url": "http://github.com/fake/fake"})
    assert code == 201
    assert body["name"] == "other" and body["git_url"] == "http://github.com/fake/fake"
    code, _, _ = await served.request("GET", "/ays/repository/other")
    assert code == 200

    code, body, _ = await served.request(
        "POST", "/ays/repository", {"name": "other", "git_url": "http://github.com/fake/fake"})
    assert (code, body) == (409, {"error": 'AYS Repository "other" already exsits'})


@pytest_twisted.ensureDeferred
async def test_repository_schema_failure_is_plain_text(served: Served) -> None:
    code, _, raw = await served.request("POST", "/ays/repository", {"name": "x"})
    assert code == 400 and raw.startswith(b"Bad Request Body")
    code, _, raw = await served.request("POST", "/ays/repository", raw=b"{not json")
    assert code == 400 and raw.startswith(b"Bad Request Body")


# Blueprints ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_blueprint_create_shape_and_conflict(served: Served) -> None:
    content = "actions: []\n"
    # The reference Go client: no Content-Type, extra keys.
    code, body, _ = await served.request(
        "POST", f"{R}/blueprint",
        {"name": "bp1", "content": content, "archived": False, "hash": "", "path": ""})
    assert code == 201
    assert body == {"name": "bp1", "content": content, "archived": False,
                    "hash": hashlib.md5(content.encode()).hexdigest(),
                    "path": f"/optvar/cockpit_repos/{REPO}/blueprints/bp1"}
    code, body, _ = await served.request("POST", f"{R}/blueprint", {"name": "bp1", "content": content})
    assert (code, body) == (409, {"error": "Blueprint with the name bp1' already exists"})


@pytest_twisted.ensureDeferred
async def test_blueprint_content_must_be_text(served: Served) -> None:
    code, _, raw = await served.request("POST", f"{R}/blueprint", {"name": "bp", "content": {"a": 1}})
    assert code == 400 and raw.startswith(b"Bad Request Body")
    code, _, _ = await served.request("POST", f"{R}/blueprint", {"content": "a: 1"})
    assert code == 400


@pytest_twisted.ensureDeferred
async def test_blueprint_execute_archive_delete(served: Served) -> None:
    await served.request("POST", f"{R}/blueprint", {"name": "bp", "content": CONTAINER})
    # Execute with the literal body null, as the reference sends it.
    code, body, _ = await served.request("POST", f"{R}/blueprint/bp", raw=b"null")
    assert (code, body) == (200, {"msg": "Blueprint bp executed"})
    code, body, _ = await served.request("PUT", f"{R}/blueprint/bp/archive", raw=b"null")
    assert (code, body) == (200, {"msg": "Blueprint bp archived"})

    code, body, _ = await served.request("POST", f"{R}/blueprint/bp")
    assert (code, body) == (404, {"error": "No blueprint found with this name 'bp'"})
    code, _, _ = await served.request("PUT", f"{R}/blueprint/bp/archive")
    assert code == 404
    code, body, _ = await served.request("GET", f"{R}/blueprint/bp")
    assert code == 200 and body["archived"] is True and body["path"].endswith("/_bp")

    # The name is free again.
    code, _, _ = await served.request("POST", f"{R}/blueprint", {"name": "bp", "content": "actions: []"})
    assert code == 201
    code, body, _ = await served.request("GET", f"{R}/blueprint")
    assert body == [{"name": "bp"}, {"name": "bp"}]
    code, body, _ = await served.request("GET", f"{R}/blueprint?archived=false")
    assert body == [{"name": "bp"}]

    code, _, raw = await served.request("DELETE", f"{R}/blueprint/bp")
    assert code == 204 and raw == b""
    code, _, _ = await served.request("DELETE", f"{R}/blueprint/nope")
    assert code == 404


@pytest_twisted.ensureDeferred
async def test_execute_error_is_500_with_reason(served: Served) -> None:
    await served.request("POST", f"{R}/blueprint", {"name": "bad", "content": "container__web1: [1"})
    code, body, _ = await served.request("POST", f"{R}/blueprint/bad")
    assert code == 500
    assert body["error"].startswith("Error during execution of the blueprint:\n ")
    assert "invalid YAML" in body["error"]


# Runs -------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_run_object_shape(served: Served) -> None:
    code, _ = await served.post_blueprint("bp", CONTAINER)
    assert code == 200
    code, run, _ = await served.request("POST", f"{R}/aysrun", raw=b"null")
    assert code == 200
    assert run["state"] == "new"
    assert isinstance(run["epoch"], int) and len(run["key"]) == 32
    [step] = run["steps"]
    assert step["number"] == 1 and step["state"] == "new"
    [job] = step["jobs"]
    assert set(job) == {"key", "action_name", "actor_name", "actor", "service_key", "service_name",
                        "state", "logs"}
    assert (job["action_name"], job["actor_name"], job["actor"], job["service_name"]) == (
        "install", "container", "container", "web1")
    final = await served.run()
    assert final["state"] == "ok"
    code, again, _ = await served.request("GET", f"{R}/aysrun/{run['key']}")
    assert code == 200 and again["state"] == "ok"
    [[done]] = [s["jobs"] for s in again["steps"]]
    assert done["state"] == "ok"
    assert all(set(log) == {"epoch", "level", "category", "log", "tags"} for log in done["logs"])


@pytest_twisted.ensureDeferred
async def test_empty_run_is_ok_and_unknown_run_404(served: Served) -> None:
    final = await served.run()
    assert final["steps"] == [] and final["state"] == "ok"
    code, body, _ = await served.request("GET", f"{R}/aysrun/nope")
    assert (code, body) == (404, {"error": "No run with key nope found"})
    code, _, _ = await served.request("POST", "/ays/repository/nope/aysrun")
    assert code == 404


@pytest_twisted.ensureDeferred
async def test_simulated_run_does_not_execute(served: Served) -> None:
    await served.post_blueprint("bp", CONTAINER)
    code, run, _ = await served.request("POST", f"{R}/aysrun?simulate=true")
    assert code == 200 and len(run["steps"]) == 1
    code, service, _ = await served.request("GET", f"{R}/service/container/web1")
    assert {a["name"]: a["state"] for a in service["actions"]}["install"] == "scheduled"
    final = await served.run()
    assert final["state"] == "ok" and len(final["steps"]) == 1
    code, again, _ = await served.request("GET", f"{R}/aysrun/{run['key']}")
    assert again["state"] == "new"


# Services ----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_list_by_role_fields_and_parent(served: Served) -> None:
    await served.post_blueprint("bp", CONTAINER)
    code, items, _ = await served.request("GET", f"{R}/service/node")
    assert code == 200
    assert sorted(i["name"] for i in items) == [NODE, OTHER]
    assert all(i == {"role": "node", "name": i["name"], "data": {}} for i in items)

    code, items, _ = await served.request("GET", f"{R}/service/node.g8os?fields=hostname, status,,redisPort")
    assert code == 200
    by_name = {i["name"]: i["data"] for i in items}
    assert by_name[NODE] == {"hostname": "core0node", "status": "running", "redisPort": 7000}

    code, items, _ = await served.request(
        "GET", f"{R}/service/container?parent=node.g8os!{NODE}&fields=flist,hostname,status,storage")
    names = {i["name"] for i in items}
    assert "web1" in names
    web1 = next(i for i in items if i["name"] == "web1")
    assert web1["data"] == {"flist": "https://hub.example.org/ubuntu.flist", "hostname": "web1",
                            "status": "halted", "storage": ""}
    code, items, _ = await served.request("GET", f"{R}/service/container?parent=node.g8os!{OTHER}")
    assert (code, items) == (200, [])


@pytest_twisted.ensureDeferred
async def test_unknown_field_is_a_json_string(served: Served) -> None:
    code, body, _ = await served.request("GET", f"{R}/service/node?fields=nope")
    assert code == 400
    assert isinstance(body, str)
    assert body.startswith('No such field "nope" in service "service:node!')
    # Only checked while iterating matching services.
    code, body, _ = await served.request("GET", f"{R}/service/vm?fields=nope")
    assert (code, body) == (200, [])


@pytest_twisted.ensureDeferred
async def test_bad_parent_filter_is_400(served: Served) -> None:
    code, body, _ = await served.request("GET", f"{R}/service/container?parent=node.g8os")
    assert code == 400 and "error" in body


@pytest_twisted.ensureDeferred
async def test_get_service_shape(served: Served) -> None:
    await served.post_blueprint("bp", CONTAINER)
    for role in ("node", "node.g8os"):
        code, node, _ = await served.request("GET", f"{R}/service/{role}/{NODE}?parent=ignored")
        assert code == 200 and node["name"] == NODE and node["role"] == "node"
    assert {"role": "container", "name": "web1"} in node["consumers"]
    assert {"role": "container", "name": "web1"} in node["children"]
    code, web1, _ = await served.request("GET", f"{R}/service/container/web1")
    assert set(web1) == {"key", "name", "role", "repository", "data", "state", "path", "actions",
                         "parent", "producers", "consumers", "children", "events"}
    assert web1["parent"] == {"role": "node", "name": NODE}
    assert web1["producers"] == [{"role": "node", "name": NODE}]
    assert web1["repository"] == REPO and web1["state"] == "ok"
    assert web1["path"] == f"/optvar/cockpit_repos/{REPO}/services/node!{NODE}/container!web1"
    assert set(web1["data"]) == {"node", "status", "hostname", "flist", "initProcesses", "filesystems",
                                 "bridges", "nics", "hostNetworking", "ports", "storage", "mounts"}
    actions = {a["name"]: a for a in web1["actions"]}
    assert actions["install"] == {"name": "install", "code": "", "state": "scheduled", "recurring": None}
    assert "delete" not in actions and "stop" in actions

    code, body, _ = await served.request("GET", f"{R}/service/container/nope")
    assert (code, body) == (404, {"error": "Service not found"})


@pytest_twisted.ensureDeferred
async def test_delete_service_is_recursive(served: Served) -> None:
    await served.post_blueprint("bp", CONTAINER)
    code, _, raw = await served.request("DELETE", f"{R}/service/node.g8os/{NODE}")
    assert code == 204 and raw == b""
    code, _, _ = await served.request("GET", f"{R}/service/container/web1")
    assert code == 404
    code, body, _ = await served.request("DELETE", f"{R}/service/node.g8os/{NODE}")
    assert code == 404
    assert body == {"error": f"Service role:node.g8os name:{NODE} not found in the repo {REPO}"}


@pytest_twisted.ensureDeferred
async def test_unknown_path_and_method_answer_json(served: Served) -> None:
    code, body, _ = await served.request("GET", "/nope")
    assert code == 404 and "error" in body
    code, body, _ = await served.request("PATCH", R)
    assert code == 405 and "error" in body


@pytest_twisted.ensureDeferred
async def test_list_of_runs_and_all_services(served: Served) -> None:
    await served.post_blueprint("bp", CONTAINER)
    run = await served.run()
    code, runs, _ = await served.request("GET", f"{R}/aysrun")
    assert code == 200 and [r["key"] for r in runs] == [run["key"]]
    code, services, _ = await served.request("GET", f"{R}/service")
    assert {"role": "container", "name": "web1"} in services
