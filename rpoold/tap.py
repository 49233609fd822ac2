"""
``twistd rpoold``: options and the service tree.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.application import strports
from twisted.application.service import IService, IServiceCollection, MultiService
from twisted.python import usage

from rpoold.app import RpoolApi
from rpoold.config import ConfigError, Settings, load
from rpoold.site import make_site


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
            for line in e.problems:
                sys.stderr.write(f"rpoold: {line}\n")
            raise SystemExit(1) from None


def makeService(options: Options) -> MultiService:
    settings = options.settings
    top = MultiService()
    for backend in settings.backends.values():
        if IService.providedBy(backend):
            backend.setServiceParent(IServiceCollection(top))
    api = RpoolApi(
        settings.routing,
        request_timeout=settings.server["request_timeout"],
        max_body=settings.server["max_body_bytes"],
    )
    web: Any = strports.service(settings.server["port"], make_site(api.resource()))
    web.setServiceParent(top)
    return top
