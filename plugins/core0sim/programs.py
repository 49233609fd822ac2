"""
Real programs for ``core.system`` and ``bash`` (``core0sim --exec``): a
``ProgramRunner`` that starts local subprocesses with
``reactor.spawnProcess``, each in its own session, and reads their output
the way core0 does (protocol reference, 2.2): ``N::text`` lines carry a
level, ``N:::`` ... ``:::`` wrap a multi-line message, untagged stdout is
level 1 and stderr level 2, level 20-23 and 30 become the result's data.

When a job ends while its process runs (killed, timed out, node reboot),
the whole process group gets SIGKILL.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from typing import Any

from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from plugins.poolsim.jobs import ERROR, SUCCESS, Job

log = Logger()

#: Starts the program in a new session (so it leads its process group).
SETSID = shutil.which("setsid")

_TAGGED = re.compile(r"^(\d+)::(.*)$", re.DOTALL)
_RESULT_LEVELS = (20, 21, 22, 23, 30)


class _Output:
    """Turns output lines into a job's streams, data, level and critical."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.data = ""
        self.level = 0
        self.critical = ""
        self._block_level: int | None = None
        self._block: list[str] = []

    def line(self, stream_level: int, text: str) -> None:
        if self._block_level is not None:
            if text == ":::":
                level, body = self._block_level, "\n".join(["", *self._block])
                self._block_level, self._block = None, []
                self.message(level, body)
            else:
                self._block.append(text)
            return
        tagged = _TAGGED.match(text)
        if tagged is None:
            self.message(stream_level, text)
            return
        level, rest = int(tagged.group(1)), tagged.group(2)
        if rest == ":":
            self._block_level = level
        else:
            self.message(level, rest)

    def message(self, level: int, text: str) -> None:
        if level == 50:
            level = 2
        if level in (1, 2):
            if text:
                self.job.write(level, text + "\n")
        elif level == 9:
            self.critical = text
        elif level in _RESULT_LEVELS:
            self.data, self.level = text, level


class _ProgramProtocol(ProcessProtocol):
    def __init__(self, runner: ExecPrograms, job: Job, stdin: str) -> None:
        self.runner = runner
        self.job = job
        self.stdin = stdin.encode("utf-8")
        self.output = _Output(job)
        self.partial = {1: b"", 2: b""}
        self.pid: int | None = None

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.pid = self.transport.pid
        self.runner.running[id(self)] = self
        self.job.on_signal = self.signal
        self.job.done.addBoth(self._job_done)
        if self.stdin:
            self.transport.write(self.stdin)
        self.transport.closeStdin()

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the program's process group."""
        if self.pid is None:
            return
        try:
            if SETSID:
                os.killpg(self.pid, signum)
                return
        except ProcessLookupError:
            pass  # not yet its own group leader (setsid has not run yet)
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def _job_done(self, result: Any) -> Any:
        if id(self) in self.runner.running:
            self.signal(signal.SIGKILL)
        return result

    def _received(self, level: int, data: bytes) -> None:
        lines = (self.partial[level] + data).split(b"\n")
        self.partial[level] = lines.pop()
        for line in lines:
            self.output.line(level, line.rstrip(b"\r").decode("utf-8", "replace"))

    def outReceived(self, data: bytes) -> None:
        self._received(1, data)

    def errReceived(self, data: bytes) -> None:
        self._received(2, data)

    def processEnded(self, reason: Failure) -> None:
        self.runner.running.pop(id(self), None)
        for level in (1, 2):
            if self.partial[level]:
                self.output.line(level, self.partial[level].decode("utf-8", "replace"))
                self.partial[level] = b""
        if not self.job.running:
            return
        code = getattr(reason.value, "exitCode", None)
        output = self.output
        self.job.finish(SUCCESS if code == 0 else ERROR, output.data, level=output.level,
                        critical=output.critical)


class ExecPrograms:
    """
    A ``ProgramRunner`` that runs programs for real, as local processes
    of the simulator's user.

    :ivar running: the programs still running.
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.running: dict[int, _ProgramProtocol] = {}

    def start(self, job: Job, name: str, args: list[str], directory: str,
              env: dict[str, str], stdin: str) -> None:
        environment = dict(os.environ)
        environment.update({str(k): str(v) for k, v in env.items()})
        path = shutil.which(name, path=environment.get("PATH"))
        if path is None:
            job.finish(ERROR, f'exec: "{name}": executable file not found in $PATH', streams=False)
            return
        if directory and not os.path.isdir(directory):
            job.finish(ERROR, f"chdir {directory}: no such file or directory", streams=False)
            return
        argv = [SETSID, path, *args] if SETSID else [path, *args]
        protocol = _ProgramProtocol(self, job, stdin)
        try:
            self.reactor.spawnProcess(protocol, argv[0], argv, env=environment, path=directory or None)
        except OSError as e:
            job.finish(ERROR, f"fork/exec {path}: {e.strerror}", streams=False)

    def stop_all(self) -> None:
        """Kill every program still running (the simulator stops)."""
        for protocol in list(self.running.values()):
            protocol.signal(signal.SIGKILL)
