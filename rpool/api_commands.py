"""
Every operation of the server's document, reached without a list of our
own: ``rpool call OPERATION_ID --param NAME=VALUE --body @FILE``, ``rpool
operations`` (what the document lists, or one operation described), and
``rpool api TAG OPERATION ...``, a command per operation made from the
document, grouped by tag (path parameters as arguments, query parameters
as options, ``--body`` and ``--field`` for the body).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from rpool.exits import UsageProblem
from rpool.options import apply_fields, json_option, pair, read_body, session_of
from rpool.session import DEFAULT_WAIT_TIMEOUT, Sent, Session
from rpool.spec import Operation, Spec, kebab

HTTP_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content"}


def show(session: Session, sent: Sent, output: str | None = None) -> None:
    """
    Print what an operation answered: its body (a table, or JSON), a
    download to ``output`` (or stdout), or a line for an answer without body.
    """
    outcome, answer = sent.outcome, sent.answer
    if sent.operation and outcome.status == 202:
        session.output.done(f"accepted: operation {sent.operation}",
                            {"status": 202, "operation": sent.operation, "body": outcome.body})
        return
    if answer.content and not answer.is_json and sent.operation is None:
        if output:
            Path(output).write_bytes(answer.content)
            session.output.done(f"wrote {len(answer.content)} bytes to {output}",
                                {"status": answer.status, "bytes": len(answer.content), "file": output})
        else:
            sys.stdout.buffer.write(answer.content)
            sys.stdout.flush()
        return
    if outcome.body is not None:
        session.output.data(outcome.body)
        return
    value: dict[str, Any] = {"status": outcome.status}
    if outcome.location:
        value["location"] = outcome.location
    reason = HTTP_REASONS.get(outcome.status, "")
    message = f"{outcome.status} {reason}".strip() + (f": {outcome.location}" if outcome.location else "")
    session.output.done(message, value)


def body_for(op: Operation, body: str | None, fields: tuple[str, ...]) -> tuple[Any, dict[str, Any] | None]:
    """
    The JSON body, or the multipart files, of a call of ``op``.

    :raises UsageProblem: a body given to an operation that takes none, or
        a file that cannot be read.
    """
    if op.body_media_type is None:
        if body is not None or fields:
            raise UsageProblem(f"{op.id} takes no body")
        return None, None
    if op.body_media_type == "multipart/form-data":
        if body is None:
            raise UsageProblem(f"{op.id} uploads a file: give it with --body @FILE")
        source = body[1:] if body.startswith("@") else body
        try:
            content = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        except OSError as e:
            raise UsageProblem(f"--body {body}: {e.strerror or e}") from None
        field = next(iter(op.body_schema.get("properties") or {"file": None}), "file")
        return None, {field: (Path(source).name if source != "-" else "stdin", content)}
    value = read_body(body) if body is not None else None
    value = apply_fields(value, fields)
    if value is None and op.body_required:
        raise UsageProblem(f"{op.id} needs a body: --body @FILE, --body JSON or --field KEY=VALUE")
    return value, None


def coerce(op: Operation, values: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """
    ``--param`` values split into path and query parameters, integers converted.

    :raises UsageProblem: a name the operation does not take.
    """
    by_name = {p.name: p for p in op.parameters if p.location in ("path", "query")}
    path: dict[str, Any] = {}
    query: dict[str, Any] = {}
    for name, value in values.items():
        parameter = by_name.get(name)
        if parameter is None:
            known = ", ".join(by_name) or "none"
            raise UsageProblem(f"{op.id} has no parameter '{name}' (it takes: {known})")
        converted: Any = value
        if parameter.is_integer:
            try:
                converted = int(value)
            except ValueError:
                raise UsageProblem(f"--param {name}: {value!r} is not an integer") from None
        (path if parameter.location == "path" else query)[name] = converted
    missing = [p.name for p in op.parameters if p.location == "query" and p.required and p.name not in query]
    if missing:
        raise UsageProblem(f"{op.id} needs the query parameter(s) {', '.join(missing)}")
    return path, query


def _run(session: Session, op: Operation, path: dict[str, Any], query: dict[str, Any],
         body: str | None, fields: tuple[str, ...], output: str | None, wait: bool,
         detach: bool, wait_timeout: float) -> None:
    json_body, files = body_for(op, body, fields)
    sent = session.send(op.id, path, query=query, body=json_body, files=files, wait=wait,
                        detach=detach, wait_timeout=wait_timeout)
    show(session, sent, output)


def _call_options(function: Any) -> Any:
    for decorator in reversed((
        click.option("--body", "-b", metavar="@FILE|JSON|-",
                     help="The request body: @FILE, JSON text, or - for stdin (for an upload: the file)."),
        click.option("--field", "-f", "fields", multiple=True, metavar="KEY=VALUE",
                     help="Set a body field (a.b=... nested; the value is JSON when it parses). Repeatable."),
        click.option("--output", "-o", metavar="FILE", help="Write a download to FILE instead of stdout."),
        click.option("--wait", is_flag=True,
                     help="Run it as a server operation, when the server has them, and follow it."),
        click.option("--async", "detach", is_flag=True,
                     help="Run it as a server operation and print the operation without waiting."),
        click.option("--wait-timeout", type=click.FloatRange(min=0.1), default=DEFAULT_WAIT_TIMEOUT,
                     show_default=True, metavar="SECONDS", help="How long --wait may wait."),
        json_option,
    )):
        function = decorator(function)
    return function


@click.command("call")
@click.argument("operation_id")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="A path or query parameter of the operation. Repeatable.")
@_call_options
@click.pass_context
def call(ctx: click.Context, operation_id: str, params: tuple[str, ...], body: str | None,
         fields: tuple[str, ...], output: str | None, wait: bool, detach: bool, wait_timeout: float) -> None:
    """
    Call any operation of the server by its OPERATION_ID.

    The operation is looked up in the server's /openapi.json: 'rpool
    operations' lists them, 'rpool operations OPERATION_ID' describes one.

    \b
    Examples:
      rpool call ListNodes
      rpool call GetMemInfo --param nodeid=525400123456
      rpool call CreateBridge -p nodeid=525400123456 --body @bridge.json
      rpool call FileDownload -p nodeid=525400123456 -p containername=vfw_21 -p path=/etc/hostname
    """
    session = session_of(ctx)
    op = session.operation(operation_id)
    values = dict(pair(text, "--param") for text in params)
    path, query = coerce(op, values)
    _run(session, op, path, query, body, fields, output, wait, detach, wait_timeout)


def describe(spec: Spec, op: Operation) -> str:
    """A few lines on ``op``: method and path, parameters, body fields, answers."""
    lines = [f"{op.id}: {op.method} {op.path}  (tag {op.tag}{', deprecated' if op.deprecated else ''})"]
    if op.description:
        lines += ["", op.description]
    for parameter in op.parameters:
        kind = parameter.schema.get("type", "string")
        lines.append(f"  {parameter.location} parameter {parameter.name} ({kind}"
                     f"{', required' if parameter.required else ''})")
    if op.body_media_type:
        lines.append(f"  body: {op.body_media_type}{', required' if op.body_required else ''}")
        lines += [f"    {line}" for line in body_fields(spec, op.body_schema)]
    lines.append(f"  answers: {', '.join(op.statuses)}")
    return "\n".join(lines)


def body_fields(spec: Spec, schema: dict[str, Any]) -> list[str]:
    """One line per top-level field of a body schema: name, type, required."""
    required = set(schema.get("required") or [])
    lines = []
    for name, raw in (schema.get("properties") or {}).items():
        lines.append(f"{name}: {type_name(spec, raw)}{' (required)' if name in required else ''}")
    return lines


def type_name(spec: Spec, schema: Any) -> str:
    """``string``, ``array of ContainerNICInput``, ``one of a|b``..."""
    if not isinstance(schema, dict):
        return "any"
    if isinstance(schema.get("$ref"), str):
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return "one of " + "|".join(str(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {type_name(spec, schema.get('items'))}"
    if isinstance(kind, list):
        return "|".join(str(k) for k in kind)
    return str(kind or "any")


@click.command("operations")
@click.argument("operation_id", required=False)
@click.option("--tag", help="Only the operations of this tag.")
@json_option
@click.pass_context
def operations(ctx: click.Context, operation_id: str | None, tag: str | None) -> None:
    """
    List the operations of the server's /openapi.json, or describe OPERATION_ID.
    """
    session = session_of(ctx)
    spec = session.spec
    if operation_id:
        op = session.operation(operation_id)
        if session.output.json:
            session.output.raw_json(spec.document["paths"][op.path][op.method.lower()])
        else:
            click.echo(describe(spec, op))
        return
    rows = [{"operation": op.id, "method": op.method, "path": op.path, "tag": op.tag,
             "command": f"rpool api {kebab(op.tag)} {op.command_name}"}
            for op in spec.listed() if tag in (None, op.tag, kebab(op.tag))]
    session.output.data(rows)


# rpool api TAG OPERATION -------------------------------------------------------------------------


def operation_command(spec: Spec, op: Operation) -> click.Command:
    """A click command for ``op``, made from the document."""
    parameters: list[click.Parameter] = []
    names: dict[str, str] = {}
    for index, p in enumerate(op.path_parameters):
        dest = f"path_{index}"
        names[dest] = p.name
        parameters.append(click.Argument([dest], metavar=p.name.upper(), type=int if p.is_integer else str))
    for index, p in enumerate(op.query_parameters):
        dest = f"query_{index}"
        names[dest] = p.name
        parameters.append(click.Option([f"--{kebab(p.name)}", dest], required=p.required,
                                       type=int if p.is_integer else str,
                                       help=p.description or f"The query parameter {p.name}."))

    def callback(**values: Any) -> None:
        session = session_of(click.get_current_context())
        path = {names[k]: v for k, v in values.items() if k.startswith("path_")}
        query = {names[k]: v for k, v in values.items() if k.startswith("query_") and v is not None}
        _run(session, op, path, query, values.get("body"), values.get("fields") or (),
             values.get("output"), bool(values.get("wait")), bool(values.get("detach")),
             float(values.get("wait_timeout") or DEFAULT_WAIT_TIMEOUT))

    command = click.Command(op.command_name, params=parameters, callback=callback,
                            help=_help(spec, op), short_help=f"{op.method} {op.path}",
                            deprecated=op.deprecated)
    # The shared options (body, field, output, wait, json) as on 'rpool call'.
    shared = click.command("shared")(_call_options(_nothing))
    command.params.extend(p for p in shared.params if _wanted(op, p))
    return command


def _nothing(**_: Any) -> None:
    """The callback of the command whose options are shared."""


def _wanted(op: Operation, parameter: click.Parameter) -> bool:
    if parameter.name in ("body", "fields"):
        return op.body_media_type is not None and (
            parameter.name == "body" or op.body_media_type == "application/json")
    if parameter.name in ("wait", "detach", "wait_timeout"):
        return op.method != "GET"
    if parameter.name == "output":
        # Any read may answer bytes (a document need not say so).
        return op.method == "GET" or any(not m.endswith("json") for m in op.answer_media_types)
    return True


def _help(spec: Spec, op: Operation) -> str:
    text = [f"{op.id}: {op.method} {op.path}"]
    if op.description:
        text += ["", op.description]
    if op.body_media_type:
        text += ["", f"Body ({op.body_media_type}):", "", "\b"]
        text += [f"  {line}" for line in body_fields(spec, op.body_schema)] or ["  (any)"]
    return "\n".join(text)


class TagGroup(click.Group):
    """The commands of one tag of the document."""

    def __init__(self, spec: Spec, tag: str, ops: list[Operation]) -> None:
        super().__init__(kebab(tag), help=f"The operations tagged '{tag}' in the server's document.")
        for op in ops:
            self.add_command(operation_command(spec, op))


class ApiGroup(click.Group):
    """``rpool api``: a group per tag of the server's document, made when asked for."""

    def _tags(self, ctx: click.Context) -> tuple[Spec, dict[str, list[Operation]]]:
        spec = session_of(ctx).spec
        return spec, {kebab(tag): ops for tag, ops in spec.tags().items()}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._tags(ctx)[1])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec, tags = self._tags(ctx)
        ops = tags.get(cmd_name) or tags.get(kebab(cmd_name))
        if ops is None:
            return None
        return TagGroup(spec, ops[0].tag, ops)


api = ApiGroup("api", help="""
Every operation of the server's /openapi.json as a command, grouped by tag:
'rpool api TAG OPERATION ARGS...'.  Path parameters are arguments, query
parameters options; --body and --field give the body.

\b
Examples:
  rpool api node-info get-mem-info 525400123456
  rpool api containers list-containers 525400123456 --json
  rpool api bridges create-bridge 525400123456 --body @bridge.json
""")
