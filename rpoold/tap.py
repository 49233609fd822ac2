"""
``twistd rpoold``: options and the service tree.

Whatever stops start-up (a configuration problem, a port that cannot be
opened) is said in one line per problem on stderr, before twistd starts
its log, and twistd exits 1.

With ``server.workers`` above 1 the process started is the workers'
parent (``rpoold.workers``): it checks, listens and starts the workers,
each ``twistd rpoold`` with ``--worker-fd`` (the listening socket).
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from twisted.application.service import IService, Service
from twisted.internet.error import CannotListenError
from twisted.python import usage

from rpoold.app import RpoolApi
from rpoold.config import ConfigError, Settings, load
from rpoold.events import EventSettings
from rpoold.logs import json_observer_for, text_observer_for
from rpoold.operations import Settings as OperationSettings
from rpoold.operations import default_owner
from rpoold.records import StoreError
from rpoold.service import BACKEND_STOP, DaemonService, ListeningService
from rpoold.site import ApiSite, Limits
from rpoold.version import version
from rpoold.workers import AdoptedPortService, ParentWatch, Supervisor, listen_for_workers, worker_argv


class Options(usage.Options):
    synopsis = "[--config PATH] [--port ENDPOINT]"
    longdesc = (
        "Serve the G8OS Resource Pool API.  Without --config, an embedded "
        "configuration serves every resource from the in-memory mock pool "
        "on 127.0.0.1:8080."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file."],
        [
            "port",
            "p",
            None,
            "Endpoint to listen on, e.g. tcp:8080:interface=127.0.0.1 "
            "(overrides server.port of the configuration).",
        ],
        ["worker-fd", None, None,
         "Internal: serve the listening socket of this descriptor, as a worker of "
         "the parent that passed it (server.workers).", int],
        ["worker", None, None, "Internal: which worker this is, as INDEX/COUNT."],
    ]

    settings: Settings

    def opt_version(self) -> NoReturn:
        """Print rpoold's version and exit."""
        sys.stdout.write(f"rpoold {version()}\n")
        raise SystemExit(0)

    def postOptions(self) -> None:
        try:
            self.settings = load(self["config"], self["port"])
        except ConfigError as e:
            stop_start_up(e.problems)


def stop_start_up(problems: list[str]) -> NoReturn:
    """
    End ``twistd rpoold`` before it starts: one line per problem on
    stderr, exit status 1, no traceback.
    """
    for line in problems:
        sys.stderr.write(f"rpoold: {line}\n")
    raise SystemExit(1)


def _log_observer(options: Options) -> Any:
    sections = options.settings.sections
    if sections["log"]["format"] == "json":
        return json_observer_for(sections["log"]["file"])
    return text_observer_for(getattr(options, "parent", None))


def _check_store(settings: Settings) -> None:
    try:
        settings.store.check_at_start()
    except StoreError as e:
        stop_start_up([f"{settings.source} at 'store.url': {e}"])


def _supervisor(options: Options) -> Supervisor:
    """The parent of ``server.workers`` worker processes (``rpoold.workers``)."""
    settings = options.settings
    server = settings.server
    _check_store(settings)
    try:
        port = listen_for_workers(settings.endpoint)
    except (CannotListenError, OSError) as e:
        stop_start_up([f"{settings.source} at 'server.port': cannot listen on {server['port']!r}: {e}"])
    count = settings.workers
    twistd_options = getattr(options, "parent", None)

    def argv(index: int) -> list[str]:
        return worker_argv(twistd_options, options["config"], options["port"], port.fileno(), index, count)

    return Supervisor(port, argv, count, grace_period=server["grace_period"], backend_stop=BACKEND_STOP,
                      log_observer=_log_observer(options))


def makeService(options: Options) -> Service:
    settings = options.settings
    if options["worker-fd"] is None and settings.workers > 1:
        return _supervisor(options)
    server = settings.server
    sections = settings.sections
    operations = sections["operations"]
    events = sections["events"]
    worker = options["worker"]
    api = RpoolApi(
        settings.routing,
        store=settings.store,
        operation_settings=OperationSettings(
            retention=float(operations["retention"]), max_wait=float(operations["max_wait"]),
            reboot_timeout=float(operations["reboot_timeout"]),
            transition_timeout=float(operations["transition_timeout"]),
            lease=float(operations["lease"]),
            owner=operations["owner"] or default_owner(str(server["port"]))),
        event_settings=EventSettings(
            retention=float(events["retention"]), max_events=int(events["max_events"]),
            keepalive=float(events["keepalive"]), buffer=int(events["buffer"]),
            node_interval=float(events["node_interval"])),
        request_timeout=server["request_timeout"],
        max_body=server["max_body_bytes"],
        auth=settings.auth,
        instances={
            name: (settings.plugin_of[name], backend) for name, backend in settings.backends.items()
        },
        health_timeout=sections["health"]["timeout"],
        metrics_enabled=sections["metrics"]["enabled"],
        metrics_public=sections["metrics"]["public"],
        worker=worker,
        cors_origins=tuple(server["cors_origins"]),
    )
    limits = Limits(max_body=server["max_body_bytes"], max_upload=server["max_upload_bytes"])
    audit = sections["log"].get("audit")
    site = ApiSite(api.resource(), limits, access_log=server["access_log"],
                   audit=None if audit is None else json_observer_for(audit), cors=api.cors)
    _check_store(settings)
    web: Service
    if options["worker-fd"] is not None:
        from twisted.internet import reactor

        web = AdoptedPortService(options["worker-fd"], site, reactor)
    else:
        listening = ListeningService(settings.endpoint, site)
        try:
            listening.listen()
        except (CannotListenError, OSError) as e:
            stop_start_up([f"{settings.source} at 'server.port': cannot listen on {server['port']!r}: {e}"])
        web = listening
    daemon = DaemonService(
        web,
        site,
        [b for b in settings.backends.values() if IService.providedBy(b)],
        grace_period=server["grace_period"],
        log_observer=_log_observer(options),
        store=settings.store,
        parts=api.long.services,
        stopping=[lambda: api.long.close_streams("the daemon is stopping")],
    )
    if options["worker-fd"] is not None:
        from twisted.internet import reactor

        ParentWatch(reactor, lambda: daemon.stop_requested("the parent process is gone"))
    return daemon
