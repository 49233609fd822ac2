"""
Configuration: the TOML file, its checks, and the backends it builds.

A configuration names backend *instances* (``[backends.<name>]``, each
with the ``plugin`` that implements it and that plugin's options) and maps
resource families to instances (``[families]``, with a ``default``).  Every
problem found is collected and reported at once, one line each, naming the
file and the key path.
"""

from __future__ import annotations

import copy
import importlib
import os
import pkgutil
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from twisted.logger import Logger
from twisted.plugin import getPlugins
from zope.interface import implementer
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from rpoold import auth, method_signatures
from rpoold.auth import AUTH_SCHEMA, DISABLED, Authenticator
from rpoold.cors import origin_problem
from rpoold.interfaces import FAMILIES, IBackendContext, IBackendPlugin
from rpoold.records import IRecords, MemoryRecords, OpenedRecords, ScopedRecords
from rpoold.stores import open_store

log = Logger()

EMBEDDED = "<embedded default>"

#: What ``twistd -n rpoold`` runs with when no ``--config`` is given.
DEFAULT_CONFIG: dict[str, Any] = {
    "server": {"port": "tcp:8080:interface=127.0.0.1"},
    "backends": {"mock": {"plugin": "mock"}},
    "families": {"default": "mock"},
}

SERVER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": {"type": "string", "minLength": 1, "default": "tcp:8080:interface=127.0.0.1"},
        "request_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 30},
        "max_body_bytes": {"type": "integer", "minimum": 1, "default": 1048576},
        "max_upload_bytes": {"type": "integer", "minimum": 1, "default": 1073741824},
        "grace_period": {"type": "number", "minimum": 0, "default": 10},
        "access_log": {"type": "boolean", "default": True},
        # Processes serving the port (rpoold.workers); "auto": one per CPU.
        "workers": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1024}, {"const": "auto"}],
                    "default": 1, "description": "an integer from 1 to 1024, or 'auto'"},
        # Origins whose pages may call the API from a browser (rpoold.cors); checked in build.
        "cors_origins": {"type": "array", "items": {"type": "string"}, "default": []},
    },
}

METRICS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "enabled": {"type": "boolean", "default": True},
        "public": {"type": "boolean", "default": True},
    },
}

HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 5},
    },
}

LOG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "format": {"enum": ["text", "json"], "default": "text"},
        "file": {"type": "string", "minLength": 1, "default": "-"},
        # Writes only, as JSON lines (relative to the file's directory).
        "audit": {"type": "string", "minLength": 1},
    },
}

#: Extra top-level sections, each with its JSON Schema; features that need
#: a section (authentication, metrics, ...) register it here.
STORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # memory:, sqlite:///PATH (relative to the file), redis://[:PASSWORD@]HOST:PORT/DB
        "url": {"type": "string", "minLength": 1, "default": "memory:"},
    },
}

OPERATIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # Seconds an ended operation is kept; the longest ?wait=; how long a
        # reboot, a VM's state or a cluster's deployment may take.
        "retention": {"type": "number", "exclusiveMinimum": 0, "default": 86400},
        "max_wait": {"type": "number", "minimum": 0, "default": 60},
        "reboot_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 600},
        "transition_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 300},
        # Seconds after which a daemon sharing the store that stopped beating
        # loses its operations to another; this daemon's name among them
        # (default: the host name and server.port).
        "lease": {"type": "number", "exclusiveMinimum": 0, "default": 30},
        "owner": {"type": "string", "default": ""},
    },
}

EVENTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # Events kept for Last-Event-ID: for so many seconds, so many at most.
        "retention": {"type": "number", "exclusiveMinimum": 0, "default": 3600},
        "max_events": {"type": "integer", "minimum": 1, "default": 100000},
        # A comment line on an idle stream every so many seconds; events held
        # for a subscriber that does not read before it is disconnected.
        "keepalive": {"type": "number", "exclusiveMinimum": 0, "default": 15},
        "buffer": {"type": "integer", "minimum": 1, "default": 1000},
        # Seconds between two looks at every node's status (node.status); 0: none.
        "node_interval": {"type": "number", "minimum": 0, "default": 10},
    },
}

SECTIONS: dict[str, dict[str, Any]] = {
    "server": SERVER_SCHEMA,
    "store": STORE_SCHEMA,
    "operations": OPERATIONS_SCHEMA,
    "events": EVENTS_SCHEMA,
    "auth": AUTH_SCHEMA,
    "metrics": METRICS_SCHEMA,
    "health": HEALTH_SCHEMA,
    "log": LOG_SCHEMA,
}


class ConfigError(Exception):
    """
    The configuration cannot be used.

    :ivar problems: one line per problem, each naming file and key.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def key_path(parts: Iterable[Any]) -> str:
    """``["backends", "x", "nodes", 2, "host"]`` -> ``backends.x.nodes[2].host``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: jsonschema.ValidationError) -> tuple[list[Any], str]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return [*path, extra[0]] if extra else path, "unknown key"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return path + missing[:1], "missing required key"
    if error.validator == "type":
        got = type(error.instance).__name__
        return path, f"expected {error.validator_value}, got {got} {error.instance!r}"
    if error.validator == "anyOf" and "description" in error.schema:
        return path, f"expected {error.schema['description']}, got {error.instance!r}"
    if error.validator == "enum":
        return path, f"must be one of {error.validator_value}, got {error.instance!r}"
    return path, error.message


def _fill_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Apply the ``default`` of every absent property, recursively."""
    if not isinstance(value, dict) or schema.get("type") != "object":
        return value
    result = dict(value)
    for name, sub in schema.get("properties", {}).items():
        if name not in result and "default" in sub:
            result[name] = copy.deepcopy(sub["default"])
        if name in result:
            result[name] = _fill_defaults(sub, result[name])
    return result


def check(schema: dict[str, Any], value: Any, prefix: list[Any], where: str) -> list[str]:
    """
    :returns: one problem line per schema violation, prefixed by ``where``
        (the file) and the key path.
    """
    problems = []
    validator = Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))):
        path, what = _describe(error)
        problems.append(f"{where} at '{key_path(prefix + path)}': {what}")
    return problems


def discover_plugins() -> dict[str, Any]:
    """:returns: every ``IBackendPlugin`` in the ``plugins`` package, by name."""
    import plugins

    return {p.name: p for p in getPlugins(IBackendPlugin, plugins)}


def _import_failures() -> list[str]:
    """Name the plugin modules that do not import, and why."""
    import plugins

    failures = []
    for module in pkgutil.iter_modules(plugins.__path__):
        if module.ispkg:
            continue
        try:
            importlib.import_module(f"plugins.{module.name}")
        except Exception as e:
            failures.append(f"plugins.{module.name}: {type(e).__name__}: {e}")
    return failures


@dataclass
class Settings:
    """The checked configuration, and the backends it built."""

    source: str
    #: Every section of ``SECTIONS``, checked, with defaults filled in.
    sections: dict[str, dict[str, Any]]
    backends: dict[str, Any] = field(default_factory=dict)
    #: The backend serving each family, by family name (unserved: absent).
    routing: dict[str, Any] = field(default_factory=dict)
    #: Plugin name of each backend instance.
    plugin_of: dict[str, str] = field(default_factory=dict)
    #: Checks credentials (``[auth]``); disabled unless configured or needed.
    auth: Authenticator = field(default_factory=lambda: DISABLED)
    #: Where to listen (``server.port``, parsed): an ``IStreamServerEndpoint``.
    endpoint: Any = None
    #: The record store (``[store]``), not opened yet: ``check_at_start`` it
    #: before the reactor runs, ``open`` it before the backends start.
    store: IRecords = field(default_factory=MemoryRecords)

    @property
    def server(self) -> dict[str, Any]:
        """The ``[server]`` section."""
        return self.sections["server"]

    @property
    def workers(self) -> int:
        """How many processes serve the port (``server.workers``, ``auto`` resolved)."""
        return worker_count(self.server.get("workers", 1))


def worker_count(value: Any) -> int:
    """``server.workers`` as a number: ``"auto"`` is the CPUs this process may run on."""
    if value == "auto":
        try:
            return len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return os.cpu_count() or 1
    return int(value)


@implementer(IBackendContext)
class _Context:
    def __init__(self, builder: _Builder, name: str) -> None:
        self._builder = builder
        from twisted.internet import reactor

        self.reactor = reactor
        self.config_dir = builder.config_dir
        self.records = ScopedRecords(builder.store, name)

    def backend(self, name: str) -> Any:
        return self._builder.build(name)


class _Builder:
    """
    Builds backend instances on demand, so one may refer to another.

    :param broken: the instances that cannot be built, each with the
        problem lines already reported for it: one that refers to such an
        instance fails with those lines (reported once, not again).
    """

    def __init__(
        self,
        where: str,
        tables: dict[str, Any],
        available: dict[str, Any],
        config_dir: str,
        broken: dict[str, list[str]],
        store: IRecords,
    ) -> None:
        self.where = where
        self.store = store
        self.tables = tables
        self.available = available
        self.config_dir = config_dir
        self.built: dict[str, Any] = {}
        self.building: list[str] = []
        self.broken = dict(broken)

    def build(self, name: str) -> Any:
        if name in self.built:
            return self.built[name]
        if name not in self.tables:
            raise ConfigError([f"{self.where}: no backend instance '{name}' is configured"])
        if name in self.broken:
            raise ConfigError(self.broken[name])
        if name in self.building:
            cycle = " -> ".join([*self.building, name])
            raise ConfigError([f"{self.where} at 'backends.{name}': backends refer to each other ({cycle})"])
        table = self.tables[name]
        plugin = self.available[table["plugin"]]
        options = {k: v for k, v in table.items() if k != "plugin"}
        options = _fill_defaults(plugin.options_schema, options)
        self.building.append(name)
        try:
            self.built[name] = plugin.create(options, _Context(self, name))
        except ConfigError as e:
            self.broken[name] = [
                p if p.startswith(self.where) else f"{self.where} at 'backends.{name}': {p}"
                for p in e.problems
            ]
            raise ConfigError(self.broken[name]) from None
        finally:
            self.building.pop()
        return self.built[name]


def read_file(path: str, where: str | None = None) -> dict[str, Any]:
    """
    :param where: names the file in messages (default: ``configuration
        file '<path>'``).
    :raises ConfigError: the file cannot be read or is not TOML.
    """
    where = where or f"configuration file '{path}'"
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError([f"{where}: cannot read it: {e.strerror}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{where}: not valid TOML: {e}"]) from None


def load(path: str | None, port: str | None = None) -> Settings:
    """
    Read, check and build the configuration.

    :param path: a TOML file, or ``None`` for the embedded default.
    :param port: an endpoint description that overrides ``server.port``.
    :raises ConfigError: with every problem found.
    """
    if path is None:
        raw, where, config_dir = copy.deepcopy(DEFAULT_CONFIG), EMBEDDED, os.getcwd()
    else:
        where = f"configuration file '{path}'"
        raw = read_file(path, where)
        config_dir = os.path.dirname(os.path.abspath(path))
    return build(raw, where, config_dir, port)


def _layout_schema() -> dict[str, Any]:
    """The JSON Schema of a whole configuration (each plugin checks its own options)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["backends", "families"],
        "properties": {
            **SECTIONS,
            "backends": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {
                    "type": "object",
                    "required": ["plugin"],
                    "properties": {"plugin": {"type": "string"}},
                },
            },
            "families": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "default": {"type": "string"},
                    **{f.name: {"type": "string"} for f in FAMILIES},
                },
            },
        },
    }


def _valid(schema: dict[str, Any], value: Any) -> bool:
    """:returns: whether ``value`` passes ``schema`` (its problems are reported elsewhere)."""
    return bool(Draft202012Validator(schema).is_valid(value))


def _endpoint(description: Any, where: str, from_option: bool) -> tuple[Any, list[str]]:
    """
    Parse the endpoint to listen on (without listening).

    :param description: ``server.port`` (or ``--port``); not a string: it
        is already reported, and nothing is parsed.
    :returns: the endpoint (``None`` when there is none) and the problem found.
    """
    if not isinstance(description, str) or not description:
        return None, []
    from twisted.internet import endpoints, reactor

    try:
        return endpoints.serverFromString(reactor, description), []
    except Exception as e:
        given = f"{description!r} (given by --port)" if from_option else repr(description)
        return None, [f"{where} at 'server.port': {given} is not an endpoint description: "
                      f"{str(e) or type(e).__name__}"]


def _audit_file(given: str, where: str, config_dir: str) -> tuple[str, list[str]]:
    """
    :param given: ``log.audit``: a path, relative to the configuration
        file's directory unless absolute.
    :returns: the absolute path, and the problem found when it cannot be
        appended to (it is created when missing; its directory is not).
    """
    path = os.path.join(config_dir, given)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as e:
        return path, [f"{where} at 'log.audit': cannot append to '{path}': {e.strerror}"]
    return path, []


def _origin_problems(origins: list[str], where: str) -> list[str]:
    """:returns: one line per entry of ``server.cors_origins`` that is not an origin, or is listed twice."""
    problems = []
    seen: set[str] = set()
    for index, origin in enumerate(origins):
        what = origin_problem(origin)
        if what is None and origin.lower() in seen:
            what = f"{origin!r} is listed twice"
        if what is not None:
            problems.append(f"{where} at 'server.cors_origins[{index}]': {what}")
        seen.add(origin.lower())
    return problems


def _shared_by_workers(settings: Settings, tables: dict[str, Any], available: dict[str, Any],
                       where: str) -> list[str]:
    """
    :returns: one problem per part of the configuration that several
        worker processes cannot share (a backend whose plugin is
        ``process_bound``, records in ``memory:``), when ``server.workers``
        is above 1.
    """
    count = settings.workers
    if count <= 1:
        return []
    given = settings.server["workers"]
    what = f"{count} workers" + (" (auto)" if given == "auto" else "")
    problems = []
    for name in settings.backends:
        plugin = available.get(tables[name]["plugin"])
        reason = getattr(plugin, "process_bound", "")
        if plugin is not None and reason:
            problems.append(f"{where} at 'server.workers': {what} cannot share backend '{name}' "
                            f"(plugin '{plugin.name}'): {reason}")
    if isinstance(settings.store, MemoryRecords):
        problems.append(f"{where} at 'server.workers': {what} cannot share the records of "
                        f"store.url 'memory:': they live in one process's memory "
                        f"(use sqlite:///PATH or redis://...)")
    return problems


def build(raw: dict[str, Any], where: str, config_dir: str, port: str | None = None) -> Settings:
    """
    Check a parsed configuration and build its backends.

    Every problem is collected before any is reported: the layout of the
    file, the endpoint, ``[auth]``, each backend instance's plugin and
    options, the families' instances, what each backend's plugin finds
    when it builds it, and whether each backend serves its families (it
    provides and implements the family's interface, and each method takes
    the arguments the web app passes: ``rpoold.method_signatures``).  A
    part with a problem is left out of the checks that depend on it (a
    backend whose options are wrong is not built, a family whose backend
    is not built is not checked), so each problem is reported once.

    :param port: an endpoint description that overrides ``server.port``.
    :raises ConfigError: with every problem found.
    """
    problems = check(_layout_schema(), raw, [], where)

    sections: dict[str, dict[str, Any]] = {}
    usable: dict[str, bool] = {}
    for name, schema in SECTIONS.items():
        value = raw.get(name, {})
        usable[name] = _valid(schema, value)
        filled = _fill_defaults(schema, value)
        sections[name] = filled if isinstance(filled, dict) else {}
    if port is not None:
        sections["server"]["port"] = port
    store: IRecords = MemoryRecords()
    if usable["store"]:
        from twisted.internet import reactor

        try:
            store = open_store(sections["store"]["url"], config_dir, reactor)
        except ValueError as e:
            problems.append(f"{where} at 'store.url': {e}")
    if not isinstance(store, MemoryRecords):
        # Opened when the daemon starts; backends built now may call it before.
        store = OpenedRecords(store)
    if usable["log"] and "audit" in sections["log"]:
        audit, audit_problems = _audit_file(sections["log"]["audit"], where, config_dir)
        sections["log"]["audit"] = audit
        problems += audit_problems
    endpoint, port_problems = _endpoint(sections["server"].get("port"), where, port is not None)
    problems += port_problems
    if usable["server"]:
        problems += _origin_problems(sections["server"]["cors_origins"], where)

    authenticator = DISABLED
    if usable["auth"]:
        # Whether authentication is on by default depends on the endpoint:
        # without one, only what the section itself says is checked.
        section = sections["auth"] if endpoint is not None else {"enabled": False, **sections["auth"]}
        authenticator, auth_problems = auth.build(section, sections["server"]["port"], where, config_dir)
        problems += auth_problems

    available = discover_plugins()
    given_tables = raw.get("backends")
    tables: dict[str, Any] = given_tables if isinstance(given_tables, dict) else {}
    #: Instances that will not be built, with what was reported of them.
    broken: dict[str, list[str]] = {}
    for name, table in tables.items():
        if not isinstance(table, dict) or not isinstance(table.get("plugin"), str):
            broken[name] = []  # reported by the layout check
            continue
        plugin_name = table["plugin"]
        plugin = available.get(plugin_name)
        if plugin is None:
            known = ", ".join(sorted(available)) or "none"
            line = f"{where} at 'backends.{name}.plugin': unknown plugin '{plugin_name}' (known: {known})"
            failures = _import_failures()
            if failures:
                line += "; plugin modules that fail to import: " + "; ".join(failures)
            broken[name] = [line]
            problems.append(line)
            continue
        options = {k: v for k, v in table.items() if k != "plugin"}
        option_problems = check(plugin.options_schema, options, ["backends", name], where)
        if option_problems:
            broken[name] = option_problems
            problems += option_problems

    families: dict[str, str] = {}
    if isinstance(raw.get("families"), dict):
        keys = {"default", *(f.name for f in FAMILIES)}
        # An unknown key or a value that is not a string is reported by
        # the layout check; the family is left alone.
        families = {k: v for k, v in raw["families"].items() if k in keys and isinstance(v, str)}
        ignored = set(raw["families"]) - set(families)
        if isinstance(given_tables, dict):
            for key, instance in families.items():
                if instance not in tables:
                    problems.append(
                        f"{where} at 'families.{key}': no backend instance '{instance}' under [backends]")
    else:
        ignored = set()

    builder = _Builder(where, tables, available, config_dir, broken, store)
    settings = Settings(source=where, sections=sections, auth=authenticator, endpoint=endpoint,
                        store=store)
    for name in tables:
        if name in broken:
            continue
        try:
            settings.backends[name] = builder.build(name)
        except ConfigError as e:
            problems += e.problems
    settings.plugin_of = {
        name: table["plugin"] for name, table in tables.items()
        if isinstance(table, dict) and isinstance(table.get("plugin"), str)
    }

    default: str | None = families.get("default")
    for family in FAMILIES:
        if family.name in ignored or ("default" in ignored and family.name not in families):
            continue
        explicit = family.name in families
        target = families.get(family.name, default)
        if target is None or target not in settings.backends:
            continue
        backend = settings.backends[target]
        if not family.interface.providedBy(backend):
            if explicit:
                problems.append(
                    f"{where} at 'families.{family.name}': backend '{target}' "
                    f"(plugin '{settings.plugin_of[target]}') does not serve this "
                    f"family: it does not provide {family.interface.__name__}"
                )
            continue
        try:
            verifyObject(family.interface, backend)
        except Invalid as e:
            problems.append(
                f"{where} at 'families.{family.name}': backend '{target}' "
                f"claims {family.interface.__name__} but does not implement it: "
                + " ".join(str(e).split())
            )
            continue
        mismatched = method_signatures.mismatches(family, backend)
        if mismatched:
            problems += [
                f"{where} at 'families.{family.name}': backend '{target}' "
                f"(plugin '{settings.plugin_of[target]}'): {line}"
                for line in mismatched
            ]
            continue
        settings.routing[family.name] = backend
    if usable["server"]:
        problems += _shared_by_workers(settings, tables, available, where)
    if problems:
        # A problem met twice (an instance and one that refers to it) is one line.
        raise ConfigError(list(dict.fromkeys(problems)))

    for name in tables:
        if name not in families.values():
            log.warn("backend instance '{name}' is configured but serves nothing", name=name)
    unserved = [f.name for f in FAMILIES if f.name not in settings.routing]
    if unserved:
        log.warn("no backend serves {families}: they answer 501", families=", ".join(unserved))
    return settings
