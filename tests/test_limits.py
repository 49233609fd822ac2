"""
Limits on bad input, against a real daemon over loopback: the request head
(414, 431, 400 for a malformed one, in the error format), body size (413,
answered while the body arrives), content type (415), the nesting and
sizes of a JSON body, names and ids (400 before any backend call, echoed
cut), container file paths, URLs that do not decode.
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


def _raw(base: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` on a fresh connection; the answer, then the connection must end."""
    with socket.create_connection(("127.0.0.1", _port(base)), timeout=10) as sock:
        sock.sendall(data)
        answer = _read_answer(sock)
        assert sock.recv(1) == b"", "the connection stays open after the refusal"
    return answer


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


# The request head ------------------------------------------------------------------------


def _refused_head(base: str, data: bytes, status: int, words: str) -> None:
    code, headers, body = _raw(base, data)
    assert code == status, body
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert words in json.loads(body)["error"], body


def test_a_long_request_line_is_414(daemon: str) -> None:
    """A URL over 16 KiB: 414 in the error format (twisted.web closed the connection unanswered)."""
    _refused_head(daemon, b"GET /nodes/" + b"a" * 17_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                  "request line is longer than 16384 bytes")


@pytest.mark.parametrize(("headers", "words"), [
    (b"X-Big: " + b"a" * 200_000 + b"\r\n", "a request header is longer than 16384 bytes"),
    (b"".join(b"X-H%d: v\r\n" % i for i in range(101)), "more than 100 header fields"),
    (b"".join(b"X-%d: " % i + b"h" * 10_000 + b"\r\n" for i in range(4)), "head is larger than 32768 bytes"),
], ids=["long-header", "many-headers", "large-head"])
def test_large_headers_are_431(daemon: str, headers: bytes, words: str) -> None:
    _refused_head(daemon, b"GET /nodes HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n", 431, words)


@pytest.mark.parametrize("head", [b"GARBAGE\r\n\r\n", b"GET /nodes HTTP/1.1\r\nNo colon\r\n\r\n",
                                  b"GET /nodes HTTP/1.1\r\nContent-Length: x\r\n\r\n"])
def test_a_malformed_head_is_400_in_the_error_format(daemon: str, head: bytes) -> None:
    _refused_head(daemon, head, 400, "malformed HTTP request")


def test_heads_within_the_limits_are_served(daemon: str) -> None:
    headers = {f"X-H{i}": "v" * 100 for i in range(90)}
    headers["X-Long"] = "l" * 15_000
    assert call(daemon, "GET", "/nodes", headers=headers).status == 200
    # The longest container path, in 4-byte characters, percent-encoded: 12 KiB of request line.
    reply = call(daemon, "GET", f"/nodes/{N}/containers/vfw_21/filesystem",
                 query={"path": "/" + "\U0001f600" * 1023})
    assert reply.status == 404, reply.body


def test_refused_heads_are_counted(daemon: str) -> None:
    _raw(daemon, b"GET /" + b"a" * 17_000 + b" HTTP/1.1\r\n\r\n")
    text = call(daemon, "GET", "/metrics").body.decode()
    assert re.search(r'rpoold_http_requests_total\{method="other",route="unrouted",status="414"\} [1-9]',
                     text)


def test_the_daemon_serves_others_while_a_client_sends_a_huge_head(daemon: str) -> None:
    with socket.create_connection(("127.0.0.1", _port(daemon)), timeout=10) as slow:
        slow.sendall(b"GET /nodes HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000)
        assert call(daemon, "GET", "/nodes").status == 200
        slow.sendall(b"a" * 100_000 + b"\r\n\r\n")
        status, _, body = _read_answer(slow)
    assert status == 431, body


# URLs and ids ------------------------------------------------------------------------------


def test_a_path_that_is_not_utf8_is_400_in_the_error_format(daemon: str) -> None:
    reply = call(daemon, "GET", f"/nodes/{N}/containers/vfw%ff")
    _assert_json_error(reply, 400)
    assert "UTF-8" in reply.json()["error"]


def test_a_long_id_is_400_and_not_echoed(daemon: str) -> None:
    reply = call(daemon, "GET", f"/nodes/{N}/containers/" + "a" * 16_000)
    _assert_json_error(reply, 400)
    assert reply.json() == {"error": "path parameter 'containername' must have at most 64 character(s)"}


def test_a_vm_of_a_million_vcpus_is_refused_and_the_largest_answers(daemon: str) -> None:
    body = {"id": "big", "memory": 128, "cpu": 1_000_000, "nics": [], "disks": []}
    reply = call(daemon, "POST", f"/nodes/{N}/vms", json=body)
    _assert_json_error(reply, 400)
    assert "'cpu' must be at most 1024" in reply.json()["error"]
    assert call(daemon, "POST", f"/nodes/{N}/vms", json={**body, "cpu": 1024}).status == 201
    info = call(daemon, "GET", f"/nodes/{N}/vms/big/info")
    assert info.status == 200 and len(info.json()["cpu"]) == 1024
    assert call(daemon, "DELETE", f"/nodes/{N}/vms/big").status == 204


def test_a_deeply_nested_body_is_400_naming_the_limit(daemon: str) -> None:
    deep = b"[" * 1000 + b"]" * 1000
    reply = call(daemon, "POST", f"/nodes/{N}/bridges", body=deep,
                 headers={"Content-Type": "application/json"})
    _assert_json_error(reply, 400)
    assert reply.json() == {"error": "request body is nested deeper than 32 levels"}
