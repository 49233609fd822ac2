"""
Jobs and processes of a simulated agent, and the programs they run.

A job is what core0 runs for one command.  Built-in commands end at once;
process commands (``core.system``, ``bash``) start a simulated process
that lives as long as the program says: ``sleep 30`` runs 30 seconds,
``echo`` ends at once, a daemon such as ``/bin/dnsmasq -d`` runs until it
is killed.  Results have core0's shape (protocol reference, section 2).
"""

from __future__ import annotations

import json
import posixpath
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

# Final states, spelled as core0 spells them on the wire.
SUCCESS = "SUCCESS"
ERROR = "ERROR"
TIMEOUT = "TIMEOUT"
KILLED = "KILLED"
UNKNOWN_CMD = "UNKNOWN_CMD"
DUPLICATE_ID = "DUPILICATE_ID"

#: Flags of the last entry of a streamed job's output (the later protocol).
STREAM_EOF_OK = 0x2
STREAM_EOF_ERROR = 0x4

SIGKILL = 9
SIGTERM = 15
STOPPING_SIGNALS = (1, 2, SIGKILL, SIGTERM)
#: Linux signal numbers: 1 to 31, and the real-time ones up to SIGRTMAX (64).
SIGNALS = range(1, 65)
#: The signals a simulated process remembers (the latest ones).
SIGNALS_KEPT = 64


def remember_signal(process: SimProcess, signal: int) -> None:
    """Note that ``process`` got ``signal``, keeping the latest ``SIGNALS_KEPT``."""
    process.signals.append(signal)
    del process.signals[:-SIGNALS_KEPT]


class CommandError(Exception):
    """A built-in command failed; the message becomes the result's data."""


@dataclass
class SimProcess:
    """An operating-system process of a simulated agent."""

    pid: int
    ppid: int
    name: str
    cmdline: str
    createtime: int
    rss: int = 3399680
    vms: int = 8163328
    swap: int = 0
    user: float = 0.04
    system: float = 0.0
    job: Job | None = None
    signals: list[int] = field(default_factory=list)

    def as_core0(self) -> dict[str, Any]:
        """The ``process.list`` entry."""
        return {
            "pid": self.pid,
            "ppid": self.ppid,
            "cmdline": self.cmdline,
            "name": self.name,
            "createtime": self.createtime,
            "cpu": {
                "guestnice": 0, "idle": 0, "iowait": 0, "irq": 0, "nice": 0,
                "softirq": 0, "steal": 0, "stolen": 0,
                "system": self.system, "user": self.user,
            },
            "rss": self.rss,
            "vms": self.vms,
            "swap": self.swap,
        }


class Files(Protocol):
    """What simulated programs read of an agent's files (a ``plugins.poolsim.files.SimFilesystem``)."""

    def read_all(self, path: str) -> bytes:
        """
        The content of a file.

        :raises CommandError: for a relative path, a directory or a missing file.
        """
        ...

    def list(self, path: str) -> list[dict[str, Any]]:
        """
        The ``filesystem.list`` entries of a directory.

        :raises CommandError: for a relative path or a missing directory.
        """
        ...


class Host(Protocol):
    """
    What a job uses of the agent it runs on (a ``plugins.poolsim.agent.Agent``:
    a node's core0 or a container's coreX).  The agent, and the files it
    holds, import this module; so it names only these, and imports neither
    back.
    """

    @property
    def clock(self) -> IReactorTime:
        """The agent's time (the reactor, or a test clock)."""
        ...

    @property
    def container_id(self) -> int:
        """0 for a node's core0, the container id for coreX."""
        ...

    @property
    def processes(self) -> dict[int, SimProcess]:
        """The agent's processes by pid (a job's process leaves when the job ends)."""
        ...

    @property
    def files(self) -> Files:
        """The agent's filesystem."""
        ...

    @property
    def listeners(self) -> list[Callable[[Job, dict[str, Any]], None]]:
        """Called with ``(job, result)`` when a job ends with a published result."""
        ...

    @property
    def start_listeners(self) -> list[Callable[[Job], None]]:
        """Called with ``job`` when a command starts to run."""
        ...

    def job_output(self, job: Job, level: int, text: str, flags: int = 0) -> None:
        """A streamed job wrote ``text`` (level 1 stdout, 2 stderr), or ended (``flags``)."""
        ...

    def now_ms(self) -> int:
        """The agent's time in milliseconds."""
        ...

    def job_ended(self, job: Job, publish: bool) -> None:
        """Called by a job when it ends."""
        ...


class Job:
    """One command being run, or just finished, by an agent."""

    def __init__(
        self,
        agent: Host,
        job_id: str,
        command: str,
        arguments: dict[str, Any],
        queue: str = "",
        tags: str = "",
        max_time: int = 0,
        protected: bool = False,
        stream: bool = False,
    ) -> None:
        self.agent = agent
        #: The later protocol's ``stream`` flag: the output goes to ``stream:<id>`` as written.
        self.stream = stream
        self.id = job_id
        self.command = command
        self.arguments = arguments
        self.queue = queue
        self.tags = tags
        self.max_time = max_time
        self.protected = protected
        self.starttime = agent.now_ms()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.process: SimProcess | None = None
        self.result: dict[str, Any] | None = None
        self.done: Deferred[dict[str, Any]] = Deferred()
        self._timers: list[Any] = []
        #: Called with every signal delivered to the job (a real program
        #: runner forwards it to the process group).
        self.on_signal: Callable[[int], None] | None = None

    @property
    def running(self) -> bool:
        return self.result is None

    def write(self, level: int, text: str) -> None:
        """The program writes ``text`` on stdout (level 1) or stderr (2)."""
        (self.stdout if level == 1 else self.stderr).append(text)
        if self.stream and self.result is None:
            self.agent.job_output(self, level, text)

    def later(self, seconds: float, f: Callable[..., Any], *args: Any) -> None:
        """Call ``f`` after ``seconds`` unless the job has ended by then."""
        def fire() -> None:
            if self.running:
                f(*args)

        self._timers.append(self.agent.clock.callLater(seconds, fire))

    def listing(self) -> dict[str, Any]:
        """The ``job.list`` entry of this running job."""
        proc = self.process
        cmd: dict[str, Any] = {
            "id": self.id,
            "command": self.command,
            "arguments": self.arguments,
            "queue": self.queue,
            "tags": self.tags,
        }
        if self.max_time:
            cmd["max_time"] = self.max_time
        return {
            "cpu": 0.1 if proc else 0.0,
            "rss": proc.rss if proc else 0,
            "vms": proc.vms if proc else 0,
            "swap": 0,
            "debug": "",
            "starttime": self.starttime,
            "cmd": cmd,
        }

    def signal(self, signal: int) -> None:
        """Deliver ``signal``; 9 and 15 stop the job (``KILLED``)."""
        if self.process is not None:
            remember_signal(self.process, signal)
        if self.on_signal is not None:
            self.on_signal(signal)
        if signal in (SIGKILL, SIGTERM):
            self.finish(KILLED)

    def finish(
        self,
        state: str,
        data: str = "",
        level: int = 0,
        critical: str = "",
        streams: bool = True,
        publish: bool = True,
    ) -> dict[str, Any]:
        """
        End the job: record its result, drop its process, tell the agent.

        :param publish: ``False`` for jobs whose result core0 never
            publishes (``core.reboot``).
        """
        if self.result is not None:
            return self.result
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        now = self.agent.now_ms()
        result: dict[str, Any] = {
            "id": self.id,
            "command": self.command,
            "data": data,
            "level": level,
            "state": state,
            "starttime": self.starttime,
            "time": max(0, now - self.starttime),
            "tags": self.tags,
            "container": self.agent.container_id,
        }
        if streams:
            result["streams"] = ["".join(self.stdout[-1000:]), "".join(self.stderr[-1000:])]
        if critical:
            result["critical"] = critical
        self.result = result
        if self.stream:
            self.agent.job_output(self, 1, "", STREAM_EOF_OK if state == SUCCESS else STREAM_EOF_ERROR)
        if self.process is not None:
            self.agent.processes.pop(self.process.pid, None)
        self.agent.job_ended(self, publish)
        self.done.callback(result)
        return result


def rejected(agent: Host, job_id: str, command: str, state: str, data: str, tags: str = "") -> Job:
    """
    A job that never ran: unknown command or duplicate id.  Its result is
    published like any other (core0 answers both on ``result:<id>``), but
    it never enters the agent's job table.
    """
    job = Job(agent, job_id, command, {}, tags=tags)
    job.starttime = 0
    result = {
        "id": job_id, "command": command, "data": data, "level": 0,
        "state": state, "starttime": 0, "time": 0, "tags": tags,
        "container": agent.container_id,
    }
    for start_listener in list(agent.start_listeners):
        start_listener(job)
    job.result = result
    job.done.callback(result)
    for listener in list(agent.listeners):
        listener(job, result)
    return job


class ProgramRunner(Protocol):
    """How an agent runs the program of a process job."""

    def start(self, job: Job, name: str, args: list[str], directory: str,
              env: dict[str, str], stdin: str) -> None:
        """Start the program; call ``job.finish`` when it ends."""


class SimulatedPrograms:
    """
    Runs programs by simulating a few well-known ones.

    - ``sleep N``: ends with ``SUCCESS`` after N seconds;
    - ``echo ARGS``: prints them; ``true`` / ``false``: exit 0 / 1;
    - ``cat [FILE]``: prints stdin or the file; ``ls [DIR]``: lists it;
    - ``sh -c SCRIPT`` / ``bash``: runs ``;``-separated statements of the
      above, plus ``exit N``;
    - anything else is a daemon: it runs until it is killed.
    """

    def start(self, job: Job, name: str, args: list[str], directory: str,
              env: dict[str, str], stdin: str) -> None:
        base = posixpath.basename(name)
        if base in ("sh", "bash", "ash") and len(args) >= 2 and args[0] == "-c":
            _Script(job, args[1], stdin).run()
        elif base in _ONE_SHOT or base == "sleep":
            _Script(job, shlex.join([name, *args]), stdin).run()
        # Anything else keeps running until a signal stops it.


_ONE_SHOT = {"echo", "true", "false", "cat", "ls", "exit"}


class _Script:
    """A tiny shell: ``;``/newline-separated simple statements."""

    def __init__(self, job: Job, script: str, stdin: str) -> None:
        self.job = job
        self.stdin = stdin
        self.statements = [s.strip() for s in script.replace("\n", ";").split(";") if s.strip()]

    def run(self) -> None:
        while self.statements and self.job.running:
            statement = self.statements.pop(0)
            try:
                words = shlex.split(statement)
            except ValueError:
                self.job.write(2, f"sh: syntax error: {statement}\n")
                self.job.finish(ERROR)
                return
            if not words:
                continue
            program, args = posixpath.basename(words[0]), words[1:]
            if program == "sleep":
                try:
                    seconds = float(args[0]) if args else 0.0
                except ValueError:
                    self.job.write(2, f"sleep: invalid time interval '{args[0]}'\n")
                    self.job.finish(ERROR)
                    return
                self.job.later(seconds, self.run)
                return
            status = self.simple(program, args)
            if status is not None:
                self.job.finish(SUCCESS if status == 0 else ERROR)
                return
        if self.job.running:
            self.job.finish(SUCCESS)

    def simple(self, program: str, args: list[str]) -> int | None:
        """Run one statement; a returned status ends the script."""
        job = self.job
        if program == "echo":
            job.write(1, " ".join(args) + "\n")
        elif program == "true":
            pass
        elif program == "false":
            return 1
        elif program == "exit":
            try:
                return int(args[0]) if args else 0
            except ValueError:
                return 2
        elif program == "cat":
            if not args:
                for line in self.stdin.splitlines():
                    if line:
                        job.write(1, line + "\n")
            for path in args:
                try:
                    text = job.agent.files.read_all(path).decode("utf-8", "replace")
                except CommandError as e:
                    job.write(2, f"cat: {path}: {e}\n")
                    return 1
                for line in text.splitlines():
                    if line:
                        job.write(1, line + "\n")
        elif program == "ls":
            for path in args or ["/"]:
                try:
                    entries = job.agent.files.list(path)
                except CommandError as e:
                    job.write(2, f"ls: {path}: {e}\n")
                    return 2
                for entry in entries:
                    job.write(1, entry["name"] + "\n")
        else:
            job.write(2, f"sh: {program}: not found\n")
            return 127
        return None


def encode_data(value: Any) -> str:
    """Level-20 data: the JSON text of a built-in's return value."""
    return json.dumps(value)
