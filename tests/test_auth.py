"""
Authentication and roles.

The role matrix runs against a real ``twistd rpoold`` over loopback HTTP:
every one of the 93 operations answers 401 without credentials, 403 with
each role below the one it needs, and its documented success status with
exactly the role it needs.  Static tokens and JWTs are also checked on
their own (``Authenticator``), for every way a JWT can be wrong.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rpoold import auth
from rpoold.auth import REQUIRED_ROLE, Role, hash_token, listens_on_loopback_only
from rpoold.config import ConfigError, build
from rpoold.contract import ALL_OPERATIONS_BY_NAME, OPERATIONS, OPERATIONS_BY_NAME, OWN_OPERATIONS
from testbed.http_api import call
from testbed.mock_pool import MOCK_CONFIG
from testbed.twistd import start_rpoold
from tests.support.scenario import STEPS

TOKENS = {Role.read: "read-token-0123", Role.operate: "operate-token-4567", Role.admin: "admin-token-89ab"}
ISSUER = "itsyouonline"
AUDIENCE = "rpoold-test"
SCOPES = {
    "user:memberof:pool.readers": "read",
    "user:memberof:pool.operators": "operate",
    "user:memberof:pool.admins": "admin",
}


def _key_pair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP384R1())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return private, pem


PRIVATE, PUBLIC_PEM = _key_pair()
OTHER_PRIVATE, _ = _key_pair()


def make_jwt(
    scopes: list[str],
    *,
    key: Any = PRIVATE,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    expires_in: float = 300,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload = {"iss": issuer, "aud": audience, "exp": int(now + expires_in), "iat": now,
               "sub": "alice", "scope": scopes, **claims}
    return jwt.encode(payload, key, algorithm="ES384")


def auth_toml(key_file: str, metrics_public: bool = True) -> str:
    tokens = "".join(
        f'[[auth.tokens]]\nname = "{role.name}"\nsha256 = "{hash_token(token)}"\nrole = "{role.name}"\n\n'
        for role, token in TOKENS.items()
    )
    scopes = "".join(f'"{scope}" = "{role}"\n' for scope, role in SCOPES.items())
    return (
        MOCK_CONFIG
        + f"\n[metrics]\npublic = {str(metrics_public).lower()}\n"
        + "\n[auth]\nenabled = true\n\n"
        + tokens
        + f'[auth.jwt]\npublic_key_file = "{key_file}"\nissuer = "{ISSUER}"\naudience = "{AUDIENCE}"\n'
        + "leeway = 30\n\n[auth.jwt.scopes]\n"
        + scopes
    )


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("auth")
    (folder / "issuer.pem").write_text(PUBLIC_PEM)
    config = folder / "rpoold.toml"
    config.write_text(auth_toml("issuer.pem", metrics_public=False))
    child, base = start_rpoold(str(config))
    yield base
    child.stop()


# The table -------------------------------------------------------------------


def test_every_operation_has_a_role() -> None:
    names = {op.name for op in OPERATIONS}
    assert set(REQUIRED_ROLE) == names | {op.name for op in OWN_OPERATIONS}
    assert len(names) == 93


def test_read_role_is_get_and_ping_only() -> None:
    """... and the cancel of an operation, which needs the role of the operation it cancels."""
    ops = ALL_OPERATIONS_BY_NAME
    for name, role in REQUIRED_ROLE.items():
        if role is Role.read:
            assert ops[name].method == "GET" or name in ("PingNode", "PingContainer",
                                                         "CancelOperation"), name
        if ops[name].method == "GET":
            assert role is Role.read, name


def test_operate_role_is_lifecycle_kill_signal_process_and_files() -> None:
    operate = {name for name, role in REQUIRED_ROLE.items() if role is Role.operate}
    assert operate == {
        "RebootNode", "KillAllNodeJobs", "KillNodeJob", "KillNodeProcess",
        "StartContainer", "StopContainer", "KillAllContainerJobs", "SendSignalToJob",
        "KillContainerJob", "StartContainerProcess", "KillContainerProcess", "SendSignalToProcess",
        "FileUpload", "FileDelete", "StartVM", "StopVM", "PauseVM", "ResumeVM", "ShutdownVM",
    }


def test_scenario_calls_every_operation() -> None:
    assert {s.op for s in STEPS} == {op.name for op in OPERATIONS}


# Every operation over HTTP ------------------------------------------------------


def test_every_operation_401_403_and_success(secured: str) -> None:
    """The role matrix, in scenario order; all problems are listed at once."""
    ops = OPERATIONS_BY_NAME
    problems: list[str] = []
    ctx: dict[str, Any] = {}
    for step in STEPS:
        kwargs = step.request(ctx)
        needed = REQUIRED_ROLE[step.op]
        label = f"{step.op} ({kwargs['method']} {kwargs['path']})"
        if not step.extra.get("again"):
            anonymous = call(secured, **kwargs)
            if anonymous.status != 401 or "error" not in anonymous.json():
                problems.append(f"{label} without credentials: {anonymous.status} {anonymous.body[:100]!r}")
            elif not (anonymous.header("WWW-Authenticate") or "").startswith('Bearer realm="rpoold"'):
                problems.append(f"{label}: 401 without a Bearer challenge")
            wrong = call(secured, **_with_headers(kwargs, _bearer("not-a-known-token")))
            if wrong.status != 401:
                problems.append(f"{label} with an unknown token: {wrong.status}")
            for role in Role:
                if role >= needed:
                    continue
                low = call(secured, **_with_headers(kwargs, _bearer(TOKENS[role])))
                if low.status != 403 or "error" not in low.json():
                    problems.append(f"{label} as {role.name}: {low.status} {low.body[:100]!r}")
        reply = call(secured, **_with_headers(kwargs, _bearer(TOKENS[needed])))
        if reply.status != ops[step.op].success:
            problems.append(f"{label} as {needed.name}: {reply.status} {reply.body[:200]!r}")
            continue
        if step.save is not None:
            step.save(reply, ctx)
    assert problems == []


def _with_headers(kwargs: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    merged = dict(kwargs)
    merged["headers"] = {**(kwargs.get("headers") or {}), **headers}
    return merged


def test_jwt_over_http(secured: str) -> None:
    admin = make_jwt(["user:memberof:pool.admins"])
    reader = make_jwt(["user:memberof:pool.readers", "user:memberof:elsewhere"])
    nodes = call(secured, "GET", "/nodes", headers=_bearer(reader))
    assert nodes.status == 200 and "525400123456" in [n["id"] for n in nodes.json()]
    denied = call(secured, "POST", "/nodes/525400123456/reboot", headers=_bearer(reader))
    assert denied.status == 403
    assert 'error="insufficient_scope"' in (denied.header("WWW-Authenticate") or "")
    assert call(secured, "POST", "/vdisks/nothing/resize", json={"newSize": 1},
                headers=_bearer(admin)).status == 404
    expired = call(secured, "GET", "/nodes", headers=_bearer(make_jwt(["user:memberof:pool.admins"],
                                                                     expires_in=-120)))
    assert expired.status == 401
    assert expired.json() == {"error": "token expired"}
    assert 'error="invalid_token"' in (expired.header("WWW-Authenticate") or "")


def test_public_routes_and_metrics_setting(secured: str) -> None:
    health = call(secured, "GET", "/health")
    assert health.status == 200 and health.json()["status"] == "ok"
    document = call(secured, "GET", "/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    assert "401" in document["paths"]["/nodes"]["get"]["responses"]
    assert call(secured, "GET", "/metrics").status == 401
    metrics = call(secured, "GET", "/metrics", headers=_bearer(TOKENS[Role.read]))
    assert metrics.status == 200 and b"rpoold_http_requests_total" in metrics.body


def test_malformed_authorization_headers(secured: str) -> None:
    for value in ("Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", TOKENS[Role.admin], "bearer  x y"):
        reply = call(secured, "GET", "/nodes", headers={"Authorization": value})
        assert reply.status == 401, value
        assert "error" in reply.json()


# Credentials, unit by unit ---------------------------------------------------------


@pytest.fixture
def authenticator(tmp_path: Path) -> auth.Authenticator:
    (tmp_path / "issuer.pem").write_text(PUBLIC_PEM)
    section = {
        "enabled": True,
        "tokens": [{"sha256": hash_token(t), "role": r.name, "name": r.name} for r, t in TOKENS.items()],
        "jwt": {"public_key_file": "issuer.pem", "issuer": ISSUER, "audience": AUDIENCE,
                "leeway": 30, "scopes": SCOPES, "algorithms": ["ES384"], "scope_claim": "scope"},
    }
    result, problems = auth.build(section, "tcp:8080", "test", str(tmp_path))
    assert problems == []
    return result


def _identify(authenticator: auth.Authenticator, credential: str) -> auth.Identity:
    return authenticator.identify(f"Bearer {credential}".encode())


def test_static_tokens(authenticator: auth.Authenticator) -> None:
    for role, token in TOKENS.items():
        assert _identify(authenticator, token) == auth.Identity(role.name, role)
    with pytest.raises(auth.Unauthenticated):
        _identify(authenticator, hash_token(TOKENS[Role.admin]))  # the hash is no credential


def test_jwt_valid_takes_the_highest_scope(authenticator: auth.Authenticator) -> None:
    token = make_jwt(["user:memberof:pool.readers", "user:memberof:pool.operators"])
    assert _identify(authenticator, token) == auth.Identity("alice", Role.operate, ISSUER)
    assert _identify(authenticator, make_jwt("user:memberof:pool.admins other")).role is Role.admin


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expires_in": -60}, "token expired"),
        ({"issuer": "someone-else"}, "token issuer is not accepted"),
        ({"audience": "another-service"}, "token audience is not accepted"),
        ({"key": OTHER_PRIVATE}, "invalid token"),
        ({"nbf": int(time.time()) + 600}, "token is not valid yet"),
    ],
)
def test_jwt_refused(authenticator: auth.Authenticator, kwargs: dict[str, Any], message: str) -> None:
    token = make_jwt(["user:memberof:pool.admins"], **kwargs)
    with pytest.raises(auth.Unauthenticated) as caught:
        _identify(authenticator, token)
    assert caught.value.message == message
    assert caught.value.code == "invalid_token"


def test_jwt_clock_skew_allowance(authenticator: auth.Authenticator) -> None:
    late = make_jwt(["user:memberof:pool.admins"], expires_in=-10)
    assert _identify(authenticator, late).role is Role.admin


def test_jwt_without_expiry_or_known_scope(authenticator: auth.Authenticator) -> None:
    no_exp = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "scope": ["user:memberof:pool.admins"]},
                        PRIVATE, algorithm="ES384")
    with pytest.raises(auth.Unauthenticated, match="lacks the 'exp' claim"):
        _identify(authenticator, no_exp)
    with pytest.raises(auth.InsufficientRole):
        _identify(authenticator, make_jwt(["user:memberof:strangers"]))


def test_jwt_with_none_algorithm_is_refused(authenticator: auth.Authenticator) -> None:
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60,
                           "scope": ["user:memberof:pool.admins"]}, None, algorithm="none")
    with pytest.raises(auth.Unauthenticated):
        _identify(authenticator, unsigned)


def test_disabled_means_admin_for_everyone() -> None:
    assert auth.DISABLED.identify(None).role is Role.admin


# Configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("tcp:8080:interface=127.0.0.1", True),
        ("tcp:8080:interface=127.0.0.53", True),
        ("tcp6:8080:interface=\\:\\:1", True),
        ("tcp:8080:interface=localhost", True),
        ("unix:/run/rpoold.sock", True),
        ("tcp:8080", False),
        ("tcp:8080:interface=0.0.0.0", False),
        ("tcp:8080:interface=10.0.0.5", False),
    ],
)
def test_loopback_detection(endpoint: str, loopback: bool) -> None:
    assert listens_on_loopback_only(endpoint) is loopback


def _raw(extra: dict[str, Any]) -> dict[str, Any]:
    return {"backends": {"mock": {"plugin": "mock"}}, "families": {"default": "mock"}, **extra}


def test_auth_off_by_default_on_loopback_on_elsewhere() -> None:
    assert build(_raw({}), "test", ".").auth.enabled is False
    with pytest.raises(ConfigError) as caught:
        build(_raw({"server": {"port": "tcp:8080"}}), "test", ".")
    assert "test at 'auth': authentication is on" in caught.value.problems[0]
    explicit = build(_raw({"server": {"port": "tcp:8080"}, "auth": {"enabled": False}}), "test", ".")
    assert explicit.auth.enabled is False


def test_auth_config_problems_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "rsa.pem").write_text(
        __import__("cryptography.hazmat.primitives.asymmetric.rsa", fromlist=["x"])
        .generate_private_key(65537, 2048).public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    )
    cases = [
        ({"tokens": [{"sha256": "secret", "role": "admin"}]}, "auth.tokens[0].sha256"),
        ({"tokens": [{"sha256": hash_token("x"), "role": "root"}]}, "auth.tokens[0].role"),
        ({"jwt": {"issuer": "i", "audience": "a", "scopes": {"s": "read"}}}, "auth.jwt"),
        ({"jwt": {"public_key_file": "missing.pem", "issuer": "i", "audience": "a",
                  "scopes": {"s": "read"}}}, "auth.jwt.public_key_file"),
        ({"jwt": {"public_key": "not a key", "issuer": "i", "audience": "a",
                  "scopes": {"s": "read"}}}, "auth.jwt.public_key"),
        ({"jwt": {"public_key_file": "rsa.pem", "issuer": "i", "audience": "a",
                  "scopes": {"s": "read"}}}, "auth.jwt.algorithms[0]"),
    ]
    for section, key in cases:
        with pytest.raises(ConfigError) as caught:
            build(_raw({"auth": {"enabled": True, **section}}), "cfg", str(tmp_path))
        assert any(f"cfg at '{key}'" in p for p in caught.value.problems), (key, caught.value.problems)
