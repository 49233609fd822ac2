"""
``etc/production.toml`` loads for real: ``twistd rpoold --config`` with a
copy of it, the identity provider's public key supplied next to it as an
operator would, AYS pointed at ayssim (core0sim's nodes behind it), the
record store at a ``redis-server`` that asks for a password.  It starts,
refuses requests without credentials, and serves a JWT carrying a known
scope, with the role that scope maps to.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rpoold.config import ConfigError, load
from testbed.ays_split import SplitEnvironment
from testbed.http_api import call
from testbed.processes import Child, wait_until
from testbed.redis_server import RedisServer
from testbed.twistd import start_rpoold
from tests.support.backends import SEED_CONTAINER
from tests.support.deployments import AYS_URL_LINE, STORE_URL_LINE, copy_config, value
from tests.support.scenario import N

READ_SCOPE = "user:memberof:example-org"


class Production:
    def __init__(self, env: SplitEnvironment, config: Path, rpoold: Child, url: str,
                 key: ec.EllipticCurvePrivateKey, store: RedisServer) -> None:
        self.env = env
        self.store = store
        self.config = config
        self.rpoold = rpoold
        self.url = url
        self.key = key

    def token(self, scope: str, **claims: Any) -> dict[str, str]:
        now = int(time.time())
        payload = {"iss": "itsyouonline", "aud": "rpoold-production", "iat": now, "exp": now + 300,
                   "scope": [scope], **claims}
        return {"Authorization": "Bearer " + jwt.encode(payload, self.key, algorithm="ES384")}


#: The password of the record store's Redis in these tests.
STORE_PASSWORD = "s3cret/p@ss"


def write_production(directory: Path, ays_url: str,
                     store: RedisServer) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """The production configuration and the public key file it names, in ``directory``."""
    key = ec.generate_private_key(ec.SECP384R1())
    (directory / "itsyouonline.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    store_url = STORE_URL_LINE.replace("CHANGE-ME", quote(STORE_PASSWORD, safe="")).replace(
        ":6379/", f":{store.port}/")
    config = copy_config("production.toml", directory,
                         {AYS_URL_LINE: f'url = "{ays_url}"', STORE_URL_LINE: store_url})
    return config, key


def start_production(config: Path) -> tuple[Child, str]:
    """``twistd rpoold`` on ``config``, once it reaches AYS and the nodes."""
    child, url = start_rpoold(str(config))
    try:
        wait_until(lambda: call(url, "GET", "/health").json()["status"] == "ok", 30,
                   "rpoold reaching AYS and the nodes", child.process)
    except BaseException:
        child.stop()
        raise
    return child, url


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    env = SplitEnvironment(nodes=2).start(rpoold=False)
    store = RedisServer(password=STORE_PASSWORD).start()
    try:
        config, key = write_production(tmp_path_factory.mktemp("production"), env.ays_url, store)
        child, url = start_production(config)
        try:
            yield Production(env, config, child, url, key, store)
        finally:
            child.stop()
    finally:
        store.stop()
        env.stop()


def test_refuses_to_start_without_the_operator_files(tmp_path: Path) -> None:
    config = copy_config("production.toml", tmp_path)
    with pytest.raises(ConfigError) as caught:
        load(str(config))
    assert len(caught.value.problems) == 1
    assert "at 'auth.jwt.public_key_file': cannot read" in caught.value.problems[0]


def test_health_is_public_and_sees_both_backends(production: Production) -> None:
    report = call(production.url, "GET", "/health").json()
    assert report["backends"]["ays"]["ok"] is True
    assert report["backends"]["core0"]["answering"] == 2
    assert sorted(report["families"]) == sorted(report["backends"]["ays"]["families"]
                                                + report["backends"]["core0"]["families"])


@pytest.mark.parametrize("path", ["/nodes", f"/nodes/{N}/mem", "/metrics"])
def test_no_credentials_401(production: Production, path: str) -> None:
    reply = call(production.url, "GET", path)
    assert reply.status == 401
    assert reply.header("WWW-Authenticate") == 'Bearer realm="rpoold"'
    assert "error" in reply.json()
    reply = call(production.url, "GET", path, headers={"Authorization": "Bearer not-a-token"})
    assert reply.status == 401


def test_a_jwt_with_a_known_scope_gets_its_role(production: Production) -> None:
    read = production.token(READ_SCOPE)
    nodes = call(production.url, "GET", "/nodes", headers=read)
    assert nodes.status == 200 and {n["id"] for n in nodes.json()} >= {N}
    assert call(production.url, "GET", f"/nodes/{N}/mem", headers=read).status == 200
    text = call(production.url, "GET", "/metrics", headers=read).body.decode()
    assert value(text, "rpoold_backend_calls_total", backend="ays", outcome="ok") >= 1
    assert value(text, "rpoold_backend_calls_total", backend="core0", command="info.mem", outcome="ok") >= 1
    reply = call(production.url, "POST", f"/nodes/{N}/reboot", headers=read)
    assert reply.status == 403 and "needs role 'operate'" in reply.json()["error"]
    other = production.token(READ_SCOPE, aud="someone-else")
    assert call(production.url, "GET", "/nodes", headers=other).status == 401


def test_records_go_to_the_redis_store(production: Production) -> None:
    """The core0 backend records the seed container it sees running, in Redis, under the prefix."""
    read = production.token(READ_SCOPE)
    reply = call(production.url, "GET", f"/nodes/{N}/containers/{SEED_CONTAINER}/processes", headers=read)
    assert reply.status == 200, reply
    store = redis.Redis(port=production.store.port, password=STORE_PASSWORD)
    try:
        assert store.get("rpoold:schema") == b"1"
        assert SEED_CONTAINER.encode() in store.hkeys("rpoold:records:core0:container")
    finally:
        store.close()


def test_json_logs_and_a_clean_stop(production: Production) -> None:
    """A daemon of its own (the other tests keep the module's running)."""
    rpoold, url = start_production(production.config)
    try:
        assert call(url, "GET", "/health", headers={"X-Request-Id": "prod-probe-1"}).status == 200

        def logged() -> list[dict[str, Any]]:
            events = []
            for line in rpoold.output().splitlines():
                if line.startswith("{"):
                    event = json.loads(line)
                    if event.get("request_id") == "prod-probe-1":
                        events.append(event)
            return events

        wait_until(lambda: bool(logged()), 10, "the access log event")
        rpoold.signal(signal.SIGTERM)
        assert rpoold.process.wait(30) == 0
        output = rpoold.output()
    finally:
        rpoold.stop()
    assert "closed the connections to AYS and the nodes" in output
    assert "core0: closed the connections" in output
