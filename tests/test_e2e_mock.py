"""
End to end: ``twistd rpoold`` (embedded configuration: the mock pool) as a
real child process on a free loopback port, driven over real HTTP.

The nine examples of the seed document run in its order, as documented
there, except where the contract decided otherwise: memory is one object
(not a list) and creating a container answers 201 with a Location.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted

from testbed.http_api import Api, Reply, call
from testbed.processes import Child, wait_until
from testbed.twistd import start_rpoold
from tests.support.answers import body_of, error_of, expect, no_content
from tests.support.backends import SEED_FLIST

NODE = "525400123456"
JOB = "f3976780-f369-45df-ab54-206149dc000e"

DOCS_MEM = {
    "active": 197136384, "available": 1454743552, "buffers": 0, "cached": 372428800,
    "free": 1521983488, "inactive": 323203072, "total": 2102710272, "used": 647966720,
    "usedPercent": 30.815787064362617, "wired": 0,
}
DOCS_CREATE = {
    "nics": [{"config": {"dhcp": False, "cidr": "192.168.57.217/24", "gateway": "192.168.57.254",
                         "dns": ["8.8.8.8"]}, "id": "0", "type": "vlan"}],
    "id": "vfw_22",
    "filesystems": [],
    "flist": SEED_FLIST,
    "hostNetworking": False,
    "hostname": "vfw_22",
    "initprocesses": [],
    "ports": [],
}
DOCS_PROCESSES = [{
    "cmdline": "/coreX -core-id 10 -redis-socket /redis.socket -reply-to corex:results -hostname vfw_22",
    "cpu": {"guestnice": 0, "idle": 0, "iowait": 0, "irq": 0, "nice": 0, "softirq": 0, "steal": 0,
            "stolen": 0, "system": 0, "user": 0.04},
    "pid": 1, "rss": 3399680, "swap": 0, "vms": 8163328,
}]
DOCS_START = {"name": "/bin/dnsmasq", "pwd": "", "args": ["--conf-file=/etc/dnsmasq.conf", "-d"], "env": []}


@pytest.fixture(scope="module")
def daemon() -> Iterator[tuple[Child, str]]:
    child, url = start_rpoold()
    try:
        yield child, url
    finally:
        child.stop()


@pytest.fixture
def api(daemon: tuple[Child, str]) -> Api:
    """Over real HTTP to the daemon (instead of the harnesses' ``api``)."""
    return Api.over_http(daemon[1])


def no_traceback(reply: Reply) -> Reply:
    assert b"Traceback" not in reply.body and b'File "' not in reply.body, reply
    return reply


@pytest_twisted.ensureDeferred
async def test_the_seed_documents_examples(api: Api, daemon: tuple[Child, str]) -> None:
    # 1. List nodes.
    nodes = body_of(no_traceback(await api.get("/nodes")), "ListNodes")
    [seed] = [n for n in nodes if n["id"] == NODE]
    assert {k: seed[k] for k in ("hostname", "id", "status")} == {
        "hostname": "core0node", "id": NODE, "status": "running"}

    # 2. Memory of node 525400123456: one object (the docs show it in a list).
    mem = body_of(no_traceback(await api.get(f"/nodes/{NODE}/mem")), "GetMemInfo")
    assert isinstance(mem, dict)
    assert {k: mem[k] for k in DOCS_MEM} == DOCS_MEM

    # 3. Reboot the node.
    no_content(no_traceback(await api.post(f"/nodes/{NODE}/reboot")))

    # 4. List its containers: vfw_21 runs.
    containers = body_of(no_traceback(await api.get(f"/nodes/{NODE}/containers")), "ListContainers")
    assert {"flist": SEED_FLIST, "hostname": "vfw_21", "id": "vfw_21", "name": "vfw_21",
            "status": "running"} in containers

    # 5. Create vfw_22 with the docs' payload: 201 and its Location (the docs say 204).
    reply = no_traceback(await api.post(f"/nodes/{NODE}/containers", json=DOCS_CREATE))
    expect(reply, 201)
    assert reply.header("location") == f"/nodes/{NODE}/containers/vfw_22"
    names = [c["name"] for c in (await api.get(f"/nodes/{NODE}/containers")).json()]
    assert "vfw_22" in names

    # 6. List the jobs of vfw_21.
    jobs = body_of(no_traceback(await api.get(f"/nodes/{NODE}/containers/vfw_21/jobs")),
                   "ListContainerJobs")
    assert {"id": JOB, "startTime": 1491984742526} in jobs

    # 7. Kill that job.
    no_content(no_traceback(await api.delete(f"/nodes/{NODE}/containers/vfw_21/jobs/{JOB}")))
    jobs = (await api.get(f"/nodes/{NODE}/containers/vfw_21/jobs")).json()
    assert JOB not in [j["id"] for j in jobs]

    # 8. List the processes of vfw_22: its coreX, exactly as the docs show.
    processes = body_of(no_traceback(await api.get(f"/nodes/{NODE}/containers/vfw_22/processes")),
                        "ListContainerProcesses")
    assert processes == DOCS_PROCESSES

    # 9. Start a process in vfw_22 with the docs' payload: 202 and the Location of its job.
    reply = no_traceback(await api.post(f"/nodes/{NODE}/containers/vfw_22/processes", json=DOCS_START))
    expect(reply, 202)
    location = reply.header("location") or ""
    assert location.startswith(f"/nodes/{NODE}/containers/vfw_22/jobs/"), reply.headers
    jobs = (await api.get(f"/nodes/{NODE}/containers/vfw_22/jobs")).json()
    assert location.rsplit("/", 1)[1] in [j["id"] for j in jobs]
    job: dict[str, Any] = body_of(await api.get(location), "GetContainerJob")
    assert job["state"] == "running"
    cmdlines = [p["cmdline"] for p in (await api.get(f"/nodes/{NODE}/containers/vfw_22/processes")).json()]
    assert "/bin/dnsmasq --conf-file=/etc/dnsmasq.conf -d" in cmdlines

    assert "Traceback" not in daemon[0].output()


@pytest_twisted.ensureDeferred
async def test_unknown_path_is_404_json(api: Api) -> None:
    for path in ("/nope", "/nodes/525400123456/nope", "/nodes/525400123456/containers/vfw_21/x/y"):
        error_of(no_traceback(await api.get(path)), 404)


@pytest_twisted.ensureDeferred
async def test_wrong_method_is_405_json(api: Api) -> None:
    reply = no_traceback(await api.request("PATCH", "/nodes"))
    error_of(reply, 405, "PATCH")
    assert "GET" in (reply.header("allow") or "")
    error_of(no_traceback(await api.delete("/storageclusters")), 405, "DELETE")


@pytest_twisted.ensureDeferred
async def test_bad_input_over_http(api: Api) -> None:
    reply = await api.request("POST", f"/nodes/{NODE}/containers", body=b"{not json",
                              headers={"Content-Type": "application/json"})
    error_of(no_traceback(reply), 400, "JSON")
    reply = await api.post(f"/nodes/{NODE}/containers", json={"hostname": "x", "flist": "y"})
    error_of(no_traceback(reply), 400, "name")
    error_of(no_traceback(await api.get("/nodes/000000000000")), 404, "000000000000")


@pytest_twisted.ensureDeferred
async def test_health_and_openapi(api: Api) -> None:
    health = expect(await api.get("/health"), 200).json()
    assert health["status"] == "ok" and "containers" in health["families"]
    document = expect(await api.get("/openapi.json"), 200).json()
    assert document["openapi"].startswith("3.")


def test_json_answers_carry_their_length(daemon: tuple[Child, str]) -> None:
    """Answers and errors are sent with a Content-Length, not chunked, on a kept-alive connection."""
    port = int(daemon[1].rsplit(":", 1)[1])
    paths = [f"/nodes/{NODE}/mem", "/nodes/000000000000", "/openapi.json", f"/nodes/{NODE}/mem"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: test\r\n\r\n".encode() for p in paths))
        data = b""
        for path in paths:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed before the answer to {path}"
                data += chunk
            head, _, data = data.partition(b"\r\n\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:])
            }
            assert "transfer-encoding" not in headers, (path, headers)
            length = int(headers["content-length"])
            while len(data) < length:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed in the body of {path}"
                data += chunk
            body, data = data[:length], data[length:]
            assert headers["content-type"] == "application/json"
            assert isinstance(json.loads(body), dict), path
        assert data == b""


def test_the_text_log_has_a_line_per_answer(daemon: tuple[Child, str]) -> None:
    child, base = daemon
    call(base, "GET", f"/nodes/{NODE}/mem", headers={"X-Request-Id": "text-log-probe"})
    line = re.compile(
        rf"\[rpoold.site#info\] GET /nodes/{NODE}/mem 200 \d+ bytes \d+\.\d{{3}} s"
        r" \(request text-log-probe\)$",
        re.MULTILINE,
    )
    wait_until(lambda: line.search(child.output()) is not None, 10, "the access log line")


def test_no_answer_is_labelled_html(daemon: tuple[Child, str]) -> None:
    """
    Over real HTTP, every kind of answer: JSON bodies say so, a 201 carries
    the created resource and a 202 the job reference, a 204 has no body and
    no content type; Klein's own 404 and 405, HEAD, OPTIONS, a trailing
    slash, a path that does not decode and the site's own refusals
    (413, 414) are JSON too.  Nothing is ``text/html``.
    """
    base = daemon[1]
    bridge = "ctypebr0"
    container = "ctype_container"
    answers = {
        "GET /nodes": call(base, "GET", "/nodes"),
        "POST bridges": call(base, "POST", f"/nodes/{NODE}/bridges", json={
            "name": bridge, "networkMode": "none", "nat": False, "setting": {}}),
        "POST containers": call(base, "POST", f"/nodes/{NODE}/containers", json={
            "name": container, "hostname": container, "flist": SEED_FLIST}),
        "POST processes": call(base, "POST", f"/nodes/{NODE}/containers/{container}/processes",
                               json={"name": "sleep", "args": ["30"]}),
        "POST jobs (alias)": call(base, "POST", f"/nodes/{NODE}/containers/{container}/jobs",
                                  json={"name": "sleep", "args": ["30"]}),
        "DELETE bridge": call(base, "DELETE", f"/nodes/{NODE}/bridges/{bridge}"),
        "DELETE container": call(base, "DELETE", f"/nodes/{NODE}/containers/{container}"),
        "404 Klein": call(base, "GET", "/nope"),
        "404 slash": call(base, "GET", "/nodes/"),
        "405 Klein": call(base, "PATCH", "/nodes"),
        "OPTIONS": call(base, "OPTIONS", "/nodes"),
        "HEAD": call(base, "HEAD", "/nodes"),
        "HEAD 404": call(base, "HEAD", "/nope"),
        "400 UTF-8": call(base, "GET", "/nodes/%ff"),
        "415": call(base, "POST", f"/nodes/{NODE}/bridges", body=b"name=x",
                    headers={"Content-Type": "application/x-www-form-urlencoded"}),
        "413": call(base, "POST", f"/nodes/{NODE}/bridges", body=b"[" + b" " * (2 * 1024 * 1024) + b"]",
                    headers={"Content-Type": "application/json"}),
        "414": call(base, "GET", "/nodes/" + "x" * 20000),
    }
    for what, reply in answers.items():
        ctype = reply.header("content-type")
        assert ctype is None or "html" not in ctype, (what, reply.headers)
        if reply.status == 204:
            assert ctype is None and reply.body == b"", (what, reply)
            continue
        assert ctype == "application/json", (what, reply.headers)
        if not what.startswith("HEAD"):
            json.loads(reply.body)
    statuses = {what: reply.status for what, reply in answers.items()}
    assert statuses == {
        "GET /nodes": 200, "POST bridges": 201, "POST containers": 201, "POST processes": 202,
        "POST jobs (alias)": 202, "DELETE bridge": 204, "DELETE container": 204, "404 Klein": 404,
        "404 slash": 404, "405 Klein": 405, "OPTIONS": 405, "HEAD": 200, "HEAD 404": 404,
        "400 UTF-8": 400, "415": 415, "413": 413, "414": 414,
    }
    created = json.loads(answers["POST bridges"].body)
    assert created["name"] == bridge and answers["POST bridges"].header("location") == (
        f"/nodes/{NODE}/bridges/{bridge}")
    assert json.loads(answers["POST containers"].body)["hostname"] == container
    for what in ("POST processes", "POST jobs (alias)"):
        location = answers[what].header("location") or ""
        assert location.startswith(f"/nodes/{NODE}/containers/{container}/jobs/"), answers[what].headers
        assert json.loads(answers[what].body) == {"id": location.rsplit("/", 1)[1]}
