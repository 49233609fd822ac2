"""
The README runs as written: its ```` ```sh ```` blocks, in order, in one
``bash`` from a copy of the project, against the daemons it starts.

How each command is taken (README, "The README's commands"):

- a block whose first line is ``# not run by the README test: REASON`` is
  skipped; any other block is run, and a command this test cannot take
  fails it;
- ``make run`` is the Makefile's recipe with this test's virtualenv (the
  copy's ``.venv`` is a link to it): its ``pip install`` is checked as done
  (rpoold is installed, non-editable) and its ``twistd`` started "in
  another terminal"; ``make test`` is not run (this test is part of it);
  ``pip install '.[EXTRA]'`` is checked as done (every requirement of the
  extra is installed), not run;
- a daemon (``twistd PLUGIN``, ``redis-server``) ending in ``&`` is run by
  the shell as a job; without ``&`` it is started beside the shell ("in
  another terminal") with the shell's ``PATH``; either way the next
  command waits until it is ready (rpoold answers ``/health``, ayssim and
  redis-server listen, core0sim has written its ``--config-out``);
- ``curl`` reports each answer's status (``-w`` to stderr): it must be the
  status the command's comments name, else 2xx; a JSON answer must parse,
  unless the output is piped on; ``curl -N`` (a stream) is cut after 5 s;
- every other command must exit 0; no output may hold a traceback.

The ports the commands name (8080, 5000, ...) are replaced by free ones,
in the commands and in the copy's ``etc/*.toml`` (and ``RPOOL_URL`` names
the one that stands for 8080, rpool's default server).  Every process started
is stopped at the end (SIGTERM to its process group, then SIGKILL).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from testbed.ports import free_port, port_open
from testbed.processes import ROOT
from tests.support.readme_commands import (
    NOT_RUN,
    Command,
    readme_ports,
    sh_blocks,
    substitute_ports,
)

COMMAND_TIMEOUT = 60.0
READY_TIMEOUT = 60.0
STREAM_SECONDS = 5
#: At most this many blocks may be left out (README, "The README's commands").
MOST_NOT_RUN = 3

_CURL_MARK = "__CURL__"
_CURL = (
    "curl() {\n"
    "  local arg\n"
    '  for arg in "$@"; do case "$arg" in --no-buffer|-N*|-[a-zA-Z]*N*)\n'
    f'    set -- --max-time {STREAM_SECONDS} "$@"; break;; esac; done\n'
    f"  command curl \"$@\" -w '%{{stderr}}{_CURL_MARK} %{{http_code}} %{{content_type}}\\n'\n"
    "}\n"
)


#: A curl that follows a stream: ``-N`` alone or among short options, or ``--no-buffer``.
_STREAMING = re.compile(r"(?:^|\s)(?:-[a-zA-Z]*N[a-zA-Z]*|--no-buffer)(?=\s|$)")


class ReadmeError(AssertionError):
    """A README command did not do what the README says."""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Shell:
    """One ``bash``, fed one README command at a time, keeping its state."""

    def __init__(self, cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.cwd = cwd
        self.logs = logs
        self.count = 0
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=cwd, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._send("set -m\n" + _CURL)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def _send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def run(self, text: str, timeout: float = COMMAND_TIMEOUT) -> tuple[int, str, str, int]:
        """
        Run ``text`` in the shell.

        :returns: its exit status, stdout, stderr and ``$!`` (0 if none).
        :raises ReadmeError: it did not end within ``timeout``.
        """
        self.count += 1
        out = self.logs / f"{self.count}.out"
        err = self.logs / f"{self.count}.err"
        self._send(f"{{ {text}\n}} >'{out}' 2>'{err}' </dev/null; echo \"__RC__ $? ${{!:-0}}\"\n")
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise ReadmeError(f"did not end within {timeout:.0f} s:\n{text}\n"
                                  f"{_tail(out)}{_tail(err)}") from None
            if line == "":
                raise ReadmeError(f"the shell ended at:\n{text}")
            if line.startswith("__RC__ "):
                _, rc, pid = line.split()
                return (int(rc), out.read_bytes().decode(errors="replace"),
                        err.read_bytes().decode(errors="replace"), int(pid))

    def environment(self) -> dict[str, str]:
        """The shell's exported environment, as it is now."""
        dump = self.logs / "env"
        self.run(f"env -0 > '{dump}'")
        pairs = (entry.split("=", 1) for entry in dump.read_text().split("\0") if "=" in entry)
        return dict(pairs)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)


def _tail(path: Path, size: int = 3000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return f"--- {path.name}:\n{text[-size:]}\n"


class Readme:
    """The README's commands, run in a copy of the project."""

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "project"
        self.logs = workdir / "logs"
        self.logs.mkdir()
        home = workdir / "home"
        home.mkdir()
        copy_project(self.root)
        self.blocks = sh_blocks((ROOT / "README.md").read_text())
        self.ports = {port: free_port() for port in sorted(readme_ports(self.blocks) | {8080})}
        for config in (self.root / "etc").glob("*.toml"):
            config.write_text(substitute_ports(config.read_text(), self.ports))
        self.groups: list[int] = []
        self.others: list[subprocess.Popen[bytes]] = []
        env = fresh_terminal(home)
        # rpool's default server is 127.0.0.1:8080, moved with the port
        env["RPOOL_URL"] = f"http://127.0.0.1:{self.ports[8080]}"
        self.shell = Shell(self.root, env, self.logs)

    # -- the run --

    def run(self) -> None:
        for block in self.blocks:
            if block.not_run is not None:
                continue
            for command in block.commands:
                try:
                    self.command(command)
                except ReadmeError as e:
                    raise ReadmeError(f"README line {command.line}: {command.text}\n{e}") from None

    def command(self, command: Command) -> None:
        text = substitute_ports(command.text, self.ports)
        words = shlex.split(text.rstrip("& "))
        if words[:2] == ["make", "run"] and len(words) == 2:
            self.make_run()
        elif words[:2] == ["make", "test"] and len(words) == 2:
            return  # this test is one of make test's
        elif len(words) >= 2 and Path(words[0]).name == "pip" and words[1] == "install":
            check_installed(words[2:])
        elif command.background:
            self.background(text, words)
        elif is_daemon(words):
            self.beside(words)
        else:
            self.foreground(command, text)

    def make_run(self) -> None:
        """``make run``: the Makefile's recipe, with this test's virtualenv."""
        for line in makefile_recipe(self.root / "Makefile", "run"):
            words = shlex.split(line.replace("$(BIN)", ".venv/bin"))
            if Path(words[0]).name == "pip" and words[1:2] == ["install"]:
                check_installed([w for w in words[2:] if w != "--quiet"])
            elif is_daemon(words):
                if "--port" not in words and "--config" not in words:
                    words.append(f"--port=tcp:{self.ports[8080]}:interface=127.0.0.1")
                self.beside(words)
            else:
                raise ReadmeError(f"the Makefile's run recipe has a line this test cannot take: {line}")

    def background(self, text: str, words: list[str]) -> None:
        """A daemon as a job of the shell, waited for until it is ready."""
        if not is_daemon(words):
            raise ReadmeError(f"a background command this test does not know how to wait for: {text}\n"
                              "(teach tests/test_readme.py, or start the block with "
                              f"{NOT_RUN!r} and a reason)")
        rc, out, err, pid = self.shell.run(text)
        if rc != 0 or pid == 0:
            raise ReadmeError(f"exit status {rc}\n{out}{err}")
        self.groups.append(pid)
        self.wait_ready(words, lambda: _alive(pid), lambda: _tail(self.logs / f"{self.shell.count}.out")
                        + _tail(self.logs / f"{self.shell.count}.err"))

    def beside(self, words: list[str]) -> None:
        """A daemon "in another terminal": started beside the shell, with its PATH."""
        env = self.shell.environment()
        log = self.logs / f"beside-{len(self.others)}.log"
        program = shutil.which(words[0], path=env.get("PATH")) if "/" not in words[0] else words[0]
        if program is None:
            raise ReadmeError(f"{words[0]}: command not found (with the shell's PATH {env.get('PATH')})")
        with open(log, "wb") as output:
            child = subprocess.Popen([program, *words[1:]], cwd=self.root, env=env, stdout=output,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.others.append(child)
        self.groups.append(child.pid)
        self.wait_ready(words, lambda: child.poll() is None, lambda: _tail(log))

    def wait_ready(self, words: list[str], alive: object, output: object) -> None:
        assert callable(alive) and callable(output)
        ready = readiness(words, self.root)
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready():
            if not alive():
                raise ReadmeError(f"it exited before it was ready:\n{output()}")
            if time.monotonic() > deadline:
                raise ReadmeError(f"not ready within {READY_TIMEOUT:.0f} s:\n{output()}")
            time.sleep(0.1)

    def foreground(self, command: Command, text: str) -> None:
        rc, out, err, _ = self.shell.run(text)
        answers = [line.split(" ", 2)[1:] for line in err.splitlines()
                   if line.startswith(_CURL_MARK + " ")]
        err = "\n".join(line for line in err.splitlines() if not line.startswith(_CURL_MARK + " "))
        shown = f"exit status {rc}\n--- stdout:\n{out[-3000:]}\n--- stderr:\n{err[-3000:]}"
        if "Traceback (most recent call last)" in out + err:
            raise ReadmeError(f"a traceback:\n{shown}")
        if not answers:
            if rc != 0:
                raise ReadmeError(shown)
            return
        streaming = _STREAMING.search(text) is not None
        if rc != 0 and not (streaming and rc == 28):
            raise ReadmeError(shown)
        status = int(answers[0][0])
        content_type = answers[0][1] if len(answers[0]) > 1 else ""
        expected = command.expected_status
        if expected is not None and status != expected:
            raise ReadmeError(f"answered {status}, the README says {expected}\n{shown}")
        if expected is None and not 200 <= status < 300:
            raise ReadmeError(f"answered {status}, the README names no status (so a 2xx)\n{shown}")
        piped = "|" in text.replace("||", "")
        if piped or streaming:
            return
        body = out
        if " -si " in f" {text} " or " -i " in f" {text} ":
            head, _, body = out.partition("\r\n\r\n")
            if not head.startswith("HTTP/"):
                raise ReadmeError(f"no HTTP head in the output of curl -i\n{shown}")
        if status == 204:
            if body.strip():
                raise ReadmeError(f"a 204 with a body\n{shown}")
        elif content_type.startswith("application/json"):
            try:
                json.loads(body)
            except ValueError:
                raise ReadmeError(f"not JSON although labelled {content_type}\n{shown}") from None

    # -- the end --

    def close(self) -> None:
        for group in reversed(self.groups):
            try:
                os.killpg(group, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        for group in self.groups:
            while _group_alive(group) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _group_alive(group):
                try:
                    os.killpg(group, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for child in self.others:
            child.wait(10)
        self.shell.close()


def _group_alive(group: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z" and int(fields[2]) == group:
                return True
    return False


def copy_project(target: Path) -> None:
    """The checkout's files, without its virtualenv, caches and run state; ``.venv`` this test's."""
    shutil.copytree(ROOT, target, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "run", "__pycache__", ".mypy_cache", ".ruff_cache",
        ".pytest_cache", "*.egg-info"))
    (target / ".venv").symlink_to(sys.prefix)


def fresh_terminal(home: Path) -> dict[str, str]:
    """The environment of a new terminal: no virtualenv on ``PATH``, a home of its own."""
    venv_bin = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                           if p and os.path.realpath(p) != os.path.realpath(venv_bin))
    return {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
            "USER": os.environ.get("USER", "rpoold")}


def makefile_recipe(makefile: Path, target: str) -> list[str]:
    """The recipe lines of ``target``."""
    lines = makefile.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}:", line))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def check_installed(arguments: list[str]) -> None:
    """``pip install .`` or ``'.[EXTRA]'``: rpoold and the extra's requirements are installed."""
    targets = [a for a in arguments if not a.startswith("-")]
    if len(targets) != 1 or not re.fullmatch(r"\.(\[[\w,]+\])?", targets[0]):
        raise ReadmeError(f"a pip install this test does not take: {arguments}")
    importlib.metadata.version("rpoold")
    extras = re.findall(r"\w+", targets[0])
    for requirement in importlib.metadata.requires("rpoold") or []:
        marker = re.search(r"extra\s*==\s*['\"](\w+)['\"]", requirement)
        if marker and marker.group(1) in extras:
            name = re.match(r"[A-Za-z0-9_.-]+", requirement)
            assert name is not None
            try:
                importlib.metadata.version(name.group(0))
            except importlib.metadata.PackageNotFoundError:
                raise ReadmeError(f"{name.group(0)} of the extra {marker.group(1)} "
                                  "is not installed") from None


def is_daemon(words: list[str]) -> bool:
    """Whether ``words`` start a daemon (not ``--version`` or ``--help`` of one)."""
    return (bool(words) and Path(words[0]).name in ("twistd", "redis-server")
            and not {"--version", "--help"} & set(words))


def _option(words: list[str], name: str) -> str | None:
    for index, word in enumerate(words):
        if word == name and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def _endpoint_port(endpoint: str) -> int:
    found = re.match(r"tcp:(\d+)", endpoint)
    if not found:
        raise ReadmeError(f"an endpoint this test cannot wait for: {endpoint}")
    return int(found.group(1))


def readiness(words: list[str], cwd: Path) -> object:
    """A callable that tells whether the daemon ``words`` starts is ready."""
    program = Path(words[0]).name
    if program == "redis-server":
        port = int(_option(words, "--port") or 6379)
        return lambda: port_open(port)
    plugin = next((w for w in words[1:] if not w.startswith("-")), None)
    if plugin == "core0sim":
        out = _option(words, "--config-out")
        if out is None:
            raise ReadmeError("core0sim without --config-out: nothing tells when it is ready")
        path = cwd / out
        return path.exists
    if plugin == "ayssim":
        port = _endpoint_port(_option(words, "--port") or "tcp:5000")
        return lambda: port_open(port)
    if plugin == "rpoold":
        endpoint = _option(words, "--port")
        config = _option(words, "--config")
        if endpoint is None and config is not None:
            endpoint = tomllib.loads((cwd / config).read_text()).get("server", {}).get("port")
        port = _endpoint_port(endpoint or "tcp:8080")
        return lambda: _answers(f"http://127.0.0.1:{port}/health")
    raise ReadmeError(f"a daemon this test does not know how to wait for: {' '.join(words)}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.mark.timeout(300)
def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    if sys.prefix == sys.base_prefix:
        pytest.fail("the README test runs from the project's virtualenv (.venv/bin/python -m pytest)")
    readme = Readme(tmp_path)
    try:
        readme.run()
    finally:
        readme.close()
    assert not any(_group_alive(group) for group in readme.groups)


def test_the_blocks_left_out_are_few_and_say_why() -> None:
    blocks = sh_blocks((ROOT / "README.md").read_text())
    left_out = [block for block in blocks if block.not_run is not None]
    assert len(left_out) <= MOST_NOT_RUN, [(b.line, b.not_run) for b in left_out]
    assert all(block.not_run for block in left_out)
    assert len(blocks) - len(left_out) >= 8


def test_an_unknown_background_command_fails_loudly(tmp_path: Path) -> None:
    readme = Readme(tmp_path)
    try:
        with pytest.raises(ReadmeError, match="does not know how to wait"):
            readme.command(Command("sleep 600 &", "", 1))
        with pytest.raises(ReadmeError, match="does not know how to wait"):
            readme.command(Command("twistd -n --pidfile= web --port tcp:8080 &", "", 1))
    finally:
        readme.close()


def test_a_wrong_status_or_a_failing_command_fails(tmp_path: Path) -> None:
    readme = Readme(tmp_path)
    try:
        readme.command(Command("twistd -n --pidfile= rpoold --port tcp:8080:interface=127.0.0.1 &"
                               .replace("twistd", ".venv/bin/twistd"), "", 1))
        readme.command(Command("curl -si -X POST http://127.0.0.1:8080/nodes/525400123456/reboot",
                               "(204)", 2))
        with pytest.raises(ReadmeError, match="answered 404, the README names no status"):
            readme.command(Command("curl -s http://127.0.0.1:8080/nodes/nosuchnode", "", 3))
        with pytest.raises(ReadmeError, match="answered 200, the README says 401"):
            readme.command(Command("curl -s http://127.0.0.1:8080/nodes", "401 without a token", 4))
        with pytest.raises(ReadmeError, match="exit status 1"):
            readme.command(Command("false", "", 5))
        with pytest.raises(ReadmeError, match="command not found"):
            readme.command(Command("twistd -n --pidfile= rpoold", "", 6))
    finally:
        readme.close()


def test_comments_name_the_status() -> None:
    blocks = sh_blocks("```sh\n# Reboot a node (204)\ncurl -si -X POST http://127.0.0.1:8080/x\n"
                       "curl -s 'http://127.0.0.1:8080/nodes?sort=id'   # 400: unknown\n"
                       "curl -s http://127.0.0.1:8080/nodes/525400123456  # node 525400123456\n"
                       "curl -s http://127.0.0.1:8080/a \\\n  -d '{\"a\": \"#1\"}'\n```\n"
                       f"```sh\n{NOT_RUN} needs haproxy\nhaproxy -f etc/haproxy.cfg\n```\n"
                       "```toml\n[a]\n```\n")
    assert [b.not_run for b in blocks] == [None, "needs haproxy"]
    commands = blocks[0].commands
    assert [c.expected_status for c in commands] == [204, 400, None, None]
    assert commands[3].text == "curl -s http://127.0.0.1:8080/a -d '{\"a\": \"#1\"}'"
    assert substitute_ports(commands[0].text, {8080: 1234}) == "curl -si -X POST http://127.0.0.1:1234/x"
