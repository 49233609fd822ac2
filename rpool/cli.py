"""
The ``rpool`` command: its global options, the session it makes for the
commands below it, and the commands (readable ones for the common tasks,
``call`` and ``api`` for every operation of the server's document).
"""

from __future__ import annotations

import sys

import click

from rpool import __version__
from rpool.api_commands import api, call, operations
from rpool.container_commands import container, containers, exec_
from rpool.exits import ExitCode, RpoolError
from rpool.node_commands import node, nodes, reboot
from rpool.options import json_option, session_of
from rpool.session import Session
from rpool.settings import Settings, cache_dir, config_path
from rpool.spec_cache import cache_file
from rpool.vm_commands import vm, vms

EPILOG = """\b
Exit status: 0 ok, 1 unexpected error, 2 usage (bad option, body file,
configuration, unknown operation), 3 the job or operation failed, 4 the
server answered 4xx, 5 it answered 5xx, 6 it could not be reached,
7 timed out.
"""


class RootGroup(click.Group):
    """Commands in the order of the help, and a closed session at the end."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=RootGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", metavar="URL", help="The server (env RPOOL_URL; default http://127.0.0.1:8080).")
@click.option("--token", metavar="TOKEN", help="Bearer token (env RPOOL_TOKEN).")
@click.option("--timeout", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="How long one request may take (env RPOOL_TIMEOUT; default 60).")
@click.option("--json", "json_mode", is_flag=True, help="Print answers as JSON (for scripts).")
@click.option("--no-cache", is_flag=True, help="Fetch the server's /openapi.json instead of the cached copy.")
@click.option("--refresh", is_flag=True, help="Fetch the server's /openapi.json again and cache it.")
@click.version_option(__version__, prog_name="rpool")
@click.pass_context
def main(ctx: click.Context, url: str | None, token: str | None, timeout: float | None,
         json_mode: bool, no_cache: bool, refresh: bool) -> None:
    """
    rpool: the command line of the G8OS Resource Pool API (rpoold).

    Settings come from the options, then RPOOL_URL / RPOOL_TOKEN /
    RPOOL_TIMEOUT, then the configuration file (RPOOL_CONFIG, else
    config.toml in the user's configuration directory).  Every operation
    of the server's /openapi.json is reachable with 'rpool call' and
    'rpool api'; the other commands are the common ones, readable.

    \b
    Examples:
      rpool nodes
      rpool node mem 525400123456
      rpool containers 525400123456 --json
      rpool exec 525400123456 vfw_21 -- echo hello
      rpool reboot 525400123456 --wait
      rpool call GetMemInfo --param nodeid=525400123456
    """
    settings = Settings.resolve(url, token, timeout)
    session = Session(settings, json_mode=json_mode, cache=not no_cache, refresh=refresh)
    ctx.obj = session
    ctx.call_on_close(session.close)


@main.command("config")
@json_option
@click.pass_context
def config(ctx: click.Context) -> None:
    """The settings in use and where each came from (the token is not shown)."""
    session = session_of(ctx)
    settings = session.settings
    values = {
        "url": settings.url,
        "token": "(set)" if settings.token else "(none)",
        "timeout": settings.timeout,
        "spec_ttl": settings.spec_ttl,
        "config_file": str(config_path()),
        "cached_document": str(cache_file(cache_dir(), settings.url)),
    }
    rows = [{"setting": k, "value": v, "from": settings.sources.get(k, "")} for k, v in values.items()]
    if session.output.json:
        session.output.raw_json(values)
    else:
        session.output.data(rows)


for command in (nodes, node, reboot, containers, container, exec_, vms, vm, call, operations, api):
    main.add_command(command)


def run() -> None:
    """The console script: ``main`` with its exit codes (see ``rpool.exits``)."""
    try:
        main(prog_name="rpool")
    except RpoolError as e:  # pragma: no cover - click handles these in standalone mode
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("rpool: interrupted\n")
        sys.exit(130)
    sys.exit(ExitCode.OK)
