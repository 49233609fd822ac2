"""
Authentication and roles.

A request carries ``Authorization: Bearer <credential>``.  The credential
is either a static token, whose SHA-256 hex digest is listed in the
configuration (the token itself never is), or a JWT signed by an identity
provider whose public key the configuration names (issuer, audience and
expiry checked, with a small clock-skew allowance).  Each static token has
a role; each JWT scope the configuration knows maps to a role, and a JWT
gets the highest role among its scopes.

Roles are ordered: ``read`` may call the read-only operations (every GET
and the two pings), ``operate`` may also start, stop, reboot, kill, signal,
start processes and move files, ``admin`` may do everything.  The role
each contract operation requires is its ``role`` in ``types.json``
(:data:`REQUIRED_ROLE`, by operation name).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from rpoold import errors
from rpoold.contract import ALL_OPERATIONS


class Role(enum.IntEnum):
    """What a caller may do; a higher role may do all a lower one may."""

    read = 1
    operate = 2
    admin = 3


READ, OPERATE, ADMIN = Role.read, Role.operate, Role.admin

#: The role each operation requires (the contract's and rpoold's own), as
#: ``types.json`` says (its per-operation ``role``).
REQUIRED_ROLE: dict[str, Role] = {op.name: Role[op.role] for op in ALL_OPERATIONS}

ROLE_NAMES = [r.name for r in Role]
SHA256_HEX = "^[0-9a-f]{64}$"

#: JSON Schema of the ``[auth]`` section.
AUTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "enabled": {
            "type": "boolean",
            "description": "Default: on unless every listening address is loopback.",
        },
        "realm": {"type": "string", "pattern": r'^[^"\\]*$', "default": "rpoold"},
        "tokens": {
            "type": "array",
            "default": [],
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sha256", "role"],
                "properties": {
                    "sha256": {"type": "string", "pattern": SHA256_HEX},
                    "role": {"enum": ROLE_NAMES},
                    "name": {"type": "string"},
                },
            },
        },
        "jwt": {
            "type": "object",
            "additionalProperties": False,
            "required": ["issuer", "audience", "scopes"],
            "properties": {
                "public_key": {"type": "string", "minLength": 1},
                "public_key_file": {"type": "string", "minLength": 1},
                "algorithms": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"enum": ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512",
                                       "PS256", "PS384", "PS512", "EdDSA"]},
                    "default": ["ES384"],
                },
                "issuer": {"type": "string", "minLength": 1},
                "audience": {"type": "string", "minLength": 1},
                "leeway": {"type": "number", "minimum": 0, "maximum": 300, "default": 30},
                "scope_claim": {"type": "string", "minLength": 1, "default": "scope"},
                "scopes": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"enum": ROLE_NAMES},
                },
            },
        },
    },
}


#: The kind of public key each JWT algorithm family needs.
_KEY_TYPES: tuple[tuple[str, Any], ...] = (
    ("ES", EllipticCurvePublicKey),
    ("RS", RSAPublicKey),
    ("PS", RSAPublicKey),
    ("EdDSA", (Ed25519PublicKey, Ed448PublicKey)),
)


def hash_token(token: str) -> str:
    """:returns: the SHA-256 hex digest under which ``token`` is configured."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Unauthenticated(errors.Unauthorized):
    """401, with the RFC 6750 ``error`` code for ``WWW-Authenticate``."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


class InsufficientRole(errors.Forbidden):
    """403: valid credentials, too low a role."""


@dataclass(frozen=True)
class Identity:
    """
    Who made a request: a token's name or a JWT's subject (and its issuer),
    and the role.

    :ivar expires: when the credentials expire (a JWT's ``exp``, seconds
        since the epoch); ``None``: they do not.
    """

    subject: str
    role: Role
    issuer: str | None = None
    expires: float | None = field(default=None, compare=False)


@dataclass
class JwtSettings:
    key: Any
    algorithms: list[str]
    issuer: str
    audience: str
    leeway: float
    scope_claim: str
    scopes: dict[str, Role]


@dataclass
class Authenticator:
    """
    Checks credentials; built from the ``[auth]`` section by :func:`build`.

    :ivar enabled: when false, every request is ``admin`` and nothing is
        checked.
    """

    enabled: bool
    realm: str = "rpoold"
    tokens: dict[str, tuple[str, Role]] = field(default_factory=dict)
    jwt: JwtSettings | None = None

    def challenge(self, error: str | None = None, description: str | None = None) -> str:
        """:returns: the ``WWW-Authenticate`` value (RFC 6750)."""
        value = f'Bearer realm="{self.realm}"'
        if error:
            value += f', error="{error}"'
        if description:
            value += ', error_description="' + description.replace('"', "'").replace("\\", "/") + '"'
        return value

    def identify(self, authorization: bytes | None) -> Identity:
        """
        :param authorization: the ``Authorization`` header, if any.
        :returns: who is calling.
        :raises Unauthorized: no credentials, or invalid ones.
        """
        if not self.enabled:
            return ANONYMOUS
        if not authorization:
            raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'", None)
        scheme, _, credential = authorization.decode("latin-1").strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthenticated("only 'Authorization: Bearer <token>' is accepted", "invalid_request")
        found = self._static(credential)
        if found is not None:
            return found
        if self.jwt is not None and credential.count(".") == 2:
            return self._jwt(credential, self.jwt)
        raise Unauthenticated("invalid token", "invalid_token")

    def _static(self, credential: str) -> Identity | None:
        digest = hash_token(credential)
        match = None
        for known, entry in self.tokens.items():
            if hmac.compare_digest(known, digest):
                match = entry
        if match is None:
            return None
        return Identity(match[0], match[1])

    def _jwt(self, credential: str, settings: JwtSettings) -> Identity:
        try:
            claims = jwt.decode(
                credential,
                settings.key,
                algorithms=settings.algorithms,
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired", "invalid_token") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token audience is not accepted", "invalid_token") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token issuer is not accepted", "invalid_token") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("token is not valid yet", "invalid_token") from None
        except jwt.MissingRequiredClaimError as e:
            raise Unauthenticated(f"token lacks the '{e.claim}' claim", "invalid_token") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("invalid token", "invalid_token") from None
        scopes = claims.get(settings.scope_claim, [])
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, list):
            scopes = []
        roles = [settings.scopes[s] for s in scopes if isinstance(s, str) and s in settings.scopes]
        if not roles:
            raise InsufficientRole("token has no scope that grants a role here")
        subject = claims.get("sub") or claims.get("username") or "jwt"
        issuer = claims.get("iss")
        expires = claims.get("exp")
        return Identity(str(subject), max(roles), str(issuer) if issuer is not None else None,
                        float(expires) if isinstance(expires, int | float) else None)

    def authorize(self, identity: Identity, needed: Role, what: str) -> None:
        """:raises InsufficientRole: ``identity`` may not do ``what``."""
        if identity.role < needed:
            raise InsufficientRole(
                f"role '{identity.role.name}' may not {what}: it needs role '{needed.name}'"
            )


DISABLED = Authenticator(enabled=False)

#: Who calls when authentication is off (what ``DISABLED.identify`` answers).
ANONYMOUS = Identity("anonymous", ADMIN)


def listens_on_loopback_only(endpoint: str) -> bool:
    """
    :param endpoint: a server endpoint description (``tcp:8080:interface=127.0.0.1``,
        ``unix:/run/rpoold.sock``, ...).
    :returns: whether only this machine can connect to it.
    """
    kind, _, rest = endpoint.partition(":")
    kind = kind.lower()
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6", "ssl"):
        return False
    match = re.search(r"(?:^|:)interface=([^:]+)", rest.replace("\\:", "\x00"))
    if match is None:
        return False
    host = match.group(1).replace("\x00", ":")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build(
    section: Mapping[str, Any], port: str, where: str, config_dir: str
) -> tuple[Authenticator, list[str]]:
    """
    Build the authenticator from a checked ``[auth]`` section.

    :param port: the listening endpoint (decides the default of ``enabled``).
    :param where: the configuration's name, for problem lines.
    :returns: the authenticator and the problems found (empty when usable).
    """
    problems: list[str] = []
    enabled = section.get("enabled")
    if enabled is None:
        enabled = not listens_on_loopback_only(port)
    tokens: dict[str, tuple[str, Role]] = {}
    for index, entry in enumerate(section.get("tokens", [])):
        name = entry.get("name") or f"token[{index}]"
        if entry["sha256"] in tokens:
            problems.append(f"{where} at 'auth.tokens[{index}].sha256': the same token is listed twice")
        tokens[entry["sha256"]] = (name, Role[entry["role"]])
    jwt_settings = None
    jwt_section = section.get("jwt")
    if jwt_section is not None:
        jwt_settings, more = _build_jwt(jwt_section, where, config_dir)
        problems += more
    if enabled and not tokens and jwt_section is None:
        problems.append(
            f"{where} at 'auth': authentication is on (the daemon listens on '{port}', not "
            "only on loopback) but no tokens and no jwt are configured; add some, or set "
            "auth.enabled = false explicitly"
        )
    realm = section.get("realm", "rpoold")
    return Authenticator(enabled=bool(enabled), realm=realm, tokens=tokens, jwt=jwt_settings), problems


def _build_jwt(
    section: Mapping[str, Any], where: str, config_dir: str
) -> tuple[JwtSettings | None, list[str]]:
    problems: list[str] = []
    pem = section.get("public_key")
    key_file = section.get("public_key_file")
    if (pem is None) == (key_file is None):
        return None, [f"{where} at 'auth.jwt': give exactly one of public_key and public_key_file"]
    key_where = "auth.jwt.public_key"
    if key_file is not None:
        key_where = "auth.jwt.public_key_file"
        path = os.path.join(config_dir, key_file)
        try:
            with open(path, encoding="ascii") as f:
                pem = f.read()
        except (OSError, UnicodeDecodeError) as e:
            return None, [f"{where} at '{key_where}': cannot read '{path}': {e}"]
    assert pem is not None
    try:
        key = load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError) as e:
        return None, [f"{where} at '{key_where}': not a PEM public key ({e})"]
    algorithms = list(section.get("algorithms", ["ES384"]))
    for index, algorithm in enumerate(algorithms):
        family = next(k for prefix, k in _KEY_TYPES if algorithm.startswith(prefix))
        if not isinstance(key, family):
            problems.append(
                f"{where} at 'auth.jwt.algorithms[{index}]': {algorithm} needs a "
                f"{getattr(family, '__name__', 'Ed25519 or Ed448')} key, "
                f"and the public key is a {type(key).__name__}"
            )
    settings = JwtSettings(
        key=key,
        algorithms=algorithms,
        issuer=section["issuer"],
        audience=section["audience"],
        leeway=float(section.get("leeway", 30)),
        scope_claim=section.get("scope_claim", "scope"),
        scopes={scope: Role[role] for scope, role in section["scopes"].items()},
    )
    return settings, problems
