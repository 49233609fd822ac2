"""
``twistd rpoold``: options and the service tree.

Whatever stops start-up (a configuration problem, a port that cannot be
opened) is said in one line per problem on stderr, before twistd starts
its log, and twistd exits 1.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from twisted.application.service import IService
from twisted.internet.error import CannotListenError
from twisted.python import usage

from rpoold.app import RpoolApi
from rpoold.config import ConfigError, Settings, load
from rpoold.events import EventSettings
from rpoold.logs import json_observer_for, text_observer_for
from rpoold.operations import Settings as OperationSettings
from rpoold.operations import default_owner
from rpoold.records import StoreError
from rpoold.service import DaemonService, ListeningService
from rpoold.site import ApiSite, Limits


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
    ]

    settings: Settings

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


def makeService(options: Options) -> DaemonService:
    settings = options.settings
    server = settings.server
    sections = settings.sections
    operations = sections["operations"]
    events = sections["events"]
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
    )
    limits = Limits(max_body=server["max_body_bytes"], max_upload=server["max_upload_bytes"])
    site = ApiSite(api.resource(), limits, access_log=server["access_log"])
    try:
        settings.store.check_at_start()
    except StoreError as e:
        stop_start_up([f"{settings.source} at 'store.url': {e}"])
    web = ListeningService(settings.endpoint, site)
    try:
        web.listen()
    except (CannotListenError, OSError) as e:
        stop_start_up([f"{settings.source} at 'server.port': cannot listen on {server['port']!r}: {e}"])
    if sections["log"]["format"] == "json":
        observer: Any = json_observer_for(sections["log"]["file"])
    else:
        observer = text_observer_for(getattr(options, "parent", None))
    return DaemonService(
        web,
        site,
        [b for b in settings.backends.values() if IService.providedBy(b)],
        grace_period=server["grace_period"],
        log_observer=observer,
        store=settings.store,
        parts=api.long.services,
        stopping=[lambda: api.long.close_streams("the daemon is stopping")],
    )
