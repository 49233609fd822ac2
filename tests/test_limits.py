"""
Limits on bad input, against a real daemon over loopback: body size (413,
answered while the body arrives), content type (415), names and ids
(400 before any backend call), container file paths.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.http_api import Reply, call, multipart_body
from testbed.mock_pool import MOCK_CONFIG
from testbed.twistd import start_rpoold
from tests.support.scenario import N

MAX_BODY = 2048
MAX_UPLOAD = 16384
C = f"/nodes/{N}/containers/vfw_21"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("limits") / "rpoold.toml"
    config.write_text(
        MOCK_CONFIG + f"\n[server]\nmax_body_bytes = {MAX_BODY}\nmax_upload_bytes = {MAX_UPLOAD}\n"
    )
    child, base = start_rpoold(str(config))
    yield base
    child.stop()


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP answer with a Content-Length from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def _backend_calls(base: str, command: str) -> float:
    text = call(base, "GET", "/metrics").body.decode()
    total = 0.0
    for match in re.finditer(
        r'^rpoold_backend_calls_total\{(.*)\} (\S+)$', text, re.MULTILINE
    ):
        if f'command="{command}"' in match.group(1):
            total += float(match.group(2))
    return total


def _assert_json_error(reply: Reply, status: int) -> None:
    assert reply.status == status, reply.body
    assert reply.header("Content-Type") == "application/json"
    assert isinstance(reply.json()["error"], str)


# Body size -----------------------------------------------------------------------


def test_declared_length_over_the_limit_is_refused_before_the_body(daemon: str) -> None:
    with socket.create_connection(("127.0.0.1", _port(daemon)), timeout=10) as sock:
        sock.sendall(
            f"POST /nodes/{N}/bridges HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        status, headers, body = _read_answer(sock)
    assert status == 413
    assert headers["connection"] == "close"
    assert re.fullmatch(r"[0-9a-f]{16}", headers["x-request-id"])
    assert json.loads(body) == {"error": f"request body is larger than {MAX_BODY} bytes"}


def test_chunked_body_growing_over_the_limit_is_refused_while_it_arrives(daemon: str) -> None:
    with socket.create_connection(("127.0.0.1", _port(daemon)), timeout=10) as sock:
        sock.sendall(
            f"POST /nodes/{N}/bridges HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"x" * 1000
        for _ in range(3):  # 3000 bytes > MAX_BODY; the body never ends
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, _, body = _read_answer(sock)
    assert status == 413
    assert "larger than" in json.loads(body)["error"]


def test_body_within_the_limit_is_served(daemon: str) -> None:
    body = {"name": "brlimit", "networkMode": "none", "padding": "p" * (MAX_BODY - 200)}
    before = _backend_calls(daemon, "create_bridge")
    assert call(daemon, "POST", f"/nodes/{N}/bridges", json=body).status == 201
    assert _backend_calls(daemon, "create_bridge") == before + 1  # the counter the checks below rely on


def test_uploads_have_their_own_larger_limit(daemon: str) -> None:
    content, ctype = multipart_body([("file", "big.bin", b"u" * (MAX_BODY * 4))])
    reply = call(daemon, "POST", C + "/filesystem", body=content, headers={"Content-Type": ctype},
                 query={"path": "/tmp/big.bin"})
    assert reply.status == 204, reply.body
    download = call(daemon, "GET", C + "/filesystem", query={"path": "/tmp/big.bin"})
    assert download.body == b"u" * (MAX_BODY * 4)
    content, ctype = multipart_body([("file", "huge.bin", b"u" * (MAX_UPLOAD + 1))])
    reply = call(daemon, "POST", C + "/filesystem", body=content, headers={"Content-Type": ctype},
                 query={"path": "/tmp/huge.bin"})
    _assert_json_error(reply, 413)


# Content type ------------------------------------------------------------------------


def test_wrong_content_type_is_415(daemon: str) -> None:
    body = json.dumps({"name": "brtype", "networkMode": "none"}).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        reply = call(daemon, "POST", f"/nodes/{N}/bridges", body=body, headers={"Content-Type": ctype})
        _assert_json_error(reply, 415)
    reply = call(daemon, "POST", C + "/filesystem", body=b"{}", query={"path": "/tmp/x"},
                 headers={"Content-Type": "application/json"})
    _assert_json_error(reply, 415)
    assert call(daemon, "POST", f"/nodes/{N}/bridges", body=body,
                headers={"Content-Type": "application/json; charset=utf-8"}).status == 201


# Names, ids and paths ----------------------------------------------------------------------

REFUSED_PATHS = [
    f"/nodes/{N}/storagepools/%2e%2e",
    f"/nodes/{N}/storagepools/.",
    f"/nodes/{N}/storagepools/..%2fetc",
    f"/nodes/{N}/jobs/core:default",
    f"/nodes/{N}/jobs/a%20b",
    f"/nodes/{N}/jobs/*",
    f"/nodes/{N}/jobs/a%0d%0aSET%20x%201",
    f"/nodes/{N}/containers/x%3A%20%7Bevil%3A%201%7D",
    f"/nodes/{N}/processes/-1",
    f"/nodes/{N}/processes/99999999999999999999",
    "/vdisks/vd%0a-%20evil",
]


@pytest.mark.parametrize("path", REFUSED_PATHS)
def test_bad_path_parameters_are_400_before_any_backend_call(daemon: str, path: str) -> None:
    before = _backend_calls(daemon, "get_storage_pool_info") + _backend_calls(daemon, "get_node_job")
    reply = call(daemon, "GET", path)
    assert reply.status in (400, 404), reply.body
    assert "error" in reply.json()
    after = _backend_calls(daemon, "get_storage_pool_info") + _backend_calls(daemon, "get_node_job")
    assert after == before


BAD_BODIES = [
    (f"/nodes/{N}/storagepools", {"name": "..", "metadataProfile": "single", "dataProfile": "single",
                                  "devices": ["/dev/sdb"]}, "create_storage_pool"),
    (f"/nodes/{N}/bridges", {"name": "br: {evil: 1}", "networkMode": "none"}, "create_bridge"),
    (f"/nodes/{N}/bridges", {"name": "br\nactions:\n- install", "networkMode": "none"}, "create_bridge"),
    (f"/nodes/{N}/containers", {"name": "c:\n  x", "hostname": "h", "flist": "f"}, "create_container"),
    (f"/nodes/{N}/vms", {"id": "vm", "memory": 1, "cpu": 1,
                         "disks": [{"vdiskid": "vd1\n- evil", "maxIOps": 1}]}, "create_vm"),
    ("/storageclusters", {"label": "c", "servers": 1, "driveType": "ssd", "nodes": ["a b"]},
     "deploy_new_cluster"),
    ("/vdisks", {"id": "v", "size": 1, "type": "db", "storagecluster": "cl:1"}, "create_new_vdisk"),
    ("/vdisks", {"id": "..", "size": 1, "type": "db", "storagecluster": "cl1"}, "create_new_vdisk"),
    (f"/nodes/{N}/zerotiers", {"nwid": "../../etc"}, "join_zerotier"),
]


@pytest.mark.parametrize(("path", "body", "command"), BAD_BODIES)
def test_injection_through_names_is_400_before_any_backend_call(
    daemon: str, path: str, body: dict[str, object], command: str
) -> None:
    before = _backend_calls(daemon, command)
    reply = call(daemon, "POST", path, json=body)
    _assert_json_error(reply, 400)
    assert _backend_calls(daemon, command) == before


@pytest.mark.parametrize(
    "path", ["relative/file", "/etc/../etc/passwd", "/tmp/./x", "//tmp/x", "/tmp//x", "/tmp/x/", "/a\x00b"]
)
def test_container_file_paths_are_absolute_and_normalised(daemon: str, path: str) -> None:
    before = _backend_calls(daemon, "file_download") + _backend_calls(daemon, "file_delete")
    _assert_json_error(call(daemon, "GET", C + "/filesystem", query={"path": path}), 400)
    _assert_json_error(call(daemon, "DELETE", C + "/filesystem", json={"path": path}), 400)
    after = _backend_calls(daemon, "file_download") + _backend_calls(daemon, "file_delete")
    assert after == before


def test_unknown_routes_and_methods_answer_json(daemon: str) -> None:
    _assert_json_error(call(daemon, "GET", "/nope"), 404)
    _assert_json_error(call(daemon, "PATCH", "/nodes"), 405)


def test_no_traceback_for_garbage(daemon: str, tmp_path: Path) -> None:
    for body in (b"\xff\xfe", b"{", b"[]", b"null", b'{"name": 1}', b"1e999999"):
        reply = call(daemon, "POST", f"/nodes/{N}/bridges", body=body,
                     headers={"Content-Type": "application/json"})
        _assert_json_error(reply, 400)
