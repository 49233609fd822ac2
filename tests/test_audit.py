"""
The audit trail, over real ``twistd rpoold`` processes: every write's
access-log line names the operation, the resource and the caller (a static
token's name, a JWT's subject and issuer, ``anonymous`` without
authentication), in the text and the JSON log formats; ``[log] audit``
writes the writes, and only them, as JSON lines to a file of their own
(its path relative to the configuration file).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rpoold.auth import Role
from testbed.http_api import call
from testbed.mock_pool import MOCK_CONFIG
from testbed.processes import Child, wait_until
from testbed.twistd import start_rpoold, twistd
from tests.test_auth import ISSUER, PUBLIC_PEM, TOKENS, auth_toml, make_jwt

NODE = "525400123456"


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _audited(path: Path) -> list[dict[str, Any]]:
    return _json_lines(path.read_text()) if path.exists() else []


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Child, str, Path]]:
    """Authentication on, text log, an audit file beside the configuration."""
    folder = tmp_path_factory.mktemp("audit-on")
    (folder / "issuer.pem").write_text(PUBLIC_PEM)
    (folder / "records").mkdir()
    config = folder / "rpoold.toml"
    config.write_text(auth_toml("issuer.pem") + '\n[log]\naudit = "records/audit.jsonl"\n')
    child, base = start_rpoold(str(config))
    try:
        yield child, base, folder / "records" / "audit.jsonl"
    finally:
        child.stop()


@pytest.fixture(scope="module")
def anonymous(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Child, str, Path]]:
    """Authentication off (loopback), JSON log, an audit file."""
    folder = tmp_path_factory.mktemp("audit-off")
    config = folder / "rpoold.toml"
    config.write_text(MOCK_CONFIG + '\n[log]\nformat = "json"\naudit = "audit.jsonl"\n')
    child, base = start_rpoold(str(config))
    try:
        yield child, base, folder / "audit.jsonl"
    finally:
        child.stop()


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def test_text_lines_name_token_jwt_and_refused_callers(secured: tuple[Child, str, Path]) -> None:
    child, base, audit = secured
    admin = _bearer(TOKENS[Role.admin])
    jwt_admin = _bearer(make_jwt(["user:memberof:pool.admins"], sub="carol"))
    bridge = "auditbr1"
    created = call(base, "POST", f"/nodes/{NODE}/bridges", headers={**admin, "X-Request-Id": "audit-create"},
                   json={"name": bridge, "networkMode": "none", "nat": False, "setting": {}})
    assert created.status == 201, created
    deleted = call(base, "DELETE", f"/nodes/{NODE}/bridges/{bridge}",
                   headers={**jwt_admin, "X-Request-Id": "audit-delete"})
    assert deleted.status == 204, deleted
    refused = call(base, "POST", f"/nodes/{NODE}/reboot",
                   headers={**_bearer(TOKENS[Role.read]), "X-Request-Id": "audit-refused"})
    assert refused.status == 403, refused
    anonymous = call(base, "POST", f"/nodes/{NODE}/reboot", headers={"X-Request-Id": "audit-nobody"})
    assert anonymous.status == 401, anonymous
    read = call(base, "GET", f"/nodes/{NODE}/mem", headers={**admin, "X-Request-Id": "audit-read"})
    assert read.status == 200, read

    expected = {
        "audit-create": rf"POST /nodes/{NODE}/bridges 201 \d+ bytes \S+ s \(request audit-create\)"
                        rf" write CreateBridge /nodes/{NODE}/bridges by admin$",
        "audit-delete": rf"DELETE /nodes/{NODE}/bridges/{bridge} 204 \d+ bytes \S+ s \(request audit-delete\)"
                        rf" write DeleteBridge /nodes/{NODE}/bridges/{bridge} by carol \(issuer {ISSUER}\)$",
        "audit-refused": rf"POST /nodes/{NODE}/reboot 403 \d+ bytes \S+ s \(request audit-refused\)"
                         rf" write RebootNode /nodes/{NODE}/reboot by read$",
        "audit-nobody": rf"POST /nodes/{NODE}/reboot 401 \d+ bytes \S+ s \(request audit-nobody\)"
                        rf" write RebootNode /nodes/{NODE}/reboot by -$",
    }
    for request_id, pattern in expected.items():
        wait_until(lambda p=pattern: re.search(p, child.output(), re.MULTILINE) is not None, 10,
                   f"the access line of {request_id}")
    # A read's line is as before: no write, no caller.
    wait_until(lambda: "(request audit-read)" in child.output(), 10, "the read's line")
    [read_line] = [line for line in child.output().splitlines() if "(request audit-read)" in line]
    assert read_line.endswith("(request audit-read)"), read_line

    # The audit file: the four writes, none of the read, each a JSON line.
    wait_until(lambda: len({e.get("request_id") for e in _audited(audit)} & set(expected)) == 4, 10,
               "the audit lines")
    records = {e["request_id"]: e for e in _audited(audit)}
    assert "audit-read" not in records
    assert {k: records["audit-create"][k] for k in ("operation", "caller", "issuer", "resource", "status",
                                                    "method")} == {
        "operation": "CreateBridge", "caller": "admin", "issuer": None,
        "resource": f"/nodes/{NODE}/bridges", "status": 201, "method": "POST"}
    assert (records["audit-delete"]["caller"], records["audit-delete"]["issuer"]) == ("carol", ISSUER)
    assert records["audit-refused"]["caller"] == "read" and records["audit-refused"]["status"] == 403
    assert records["audit-nobody"]["caller"] is None and records["audit-nobody"]["status"] == 401
    assert all(e["operation"] for e in _audited(audit))


def test_json_lines_name_the_anonymous_caller(anonymous: tuple[Child, str, Path]) -> None:
    child, base, audit = anonymous
    reply = call(base, "POST", f"/nodes/{NODE}/reboot", headers={"X-Request-Id": "anon-reboot"})
    assert reply.status == 204, reply
    reply = call(base, "GET", "/nodes", headers={"X-Request-Id": "anon-read"})
    assert reply.status == 200, reply

    def logged(request_id: str) -> list[dict[str, Any]]:
        return [e for e in _json_lines(child.output())
                if e.get("request_id") == request_id and "status" in e]

    wait_until(lambda: bool(logged("anon-reboot")) and bool(logged("anon-read")), 10, "the JSON access lines")
    [write] = logged("anon-reboot")
    assert {k: write[k] for k in ("operation", "caller", "resource", "status")} == {
        "operation": "RebootNode", "caller": "anonymous", "resource": f"/nodes/{NODE}/reboot", "status": 204}
    assert "by anonymous" in write["message"]
    [read] = logged("anon-read")
    assert "operation" not in read and "caller" not in read
    wait_until(lambda: any(e.get("request_id") == "anon-reboot" for e in _audited(audit)), 10,
               "the audit line")
    assert [e["operation"] for e in _audited(audit)] == ["RebootNode"]


def test_an_audit_file_that_cannot_be_written_stops_start_up(tmp_path: Path) -> None:
    config = tmp_path / "rpoold.toml"
    config.write_text(MOCK_CONFIG + '\n[log]\naudit = "missing/audit.jsonl"\n')
    done = subprocess.run(twistd("rpoold", "--config", str(config)), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"rpoold: configuration file '{config}' at 'log.audit': cannot append to "
        f"'{tmp_path / 'missing' / 'audit.jsonl'}': No such file or directory"
    ], done.stderr
