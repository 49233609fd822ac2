"""
The agent every simulated node and container runs: its jobs, processes,
files and facts, and the built-in commands core0 and coreX share.
"""

from __future__ import annotations

import inspect
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from plugins.poolsim import facts
from plugins.poolsim.files import SimFilesystem
from plugins.poolsim.jobs import (
    DUPLICATE_ID,
    ERROR,
    KILLED,
    SIGKILL,
    SIGNALS,
    STOPPING_SIGNALS,
    SUCCESS,
    UNKNOWN_CMD,
    CommandError,
    Job,
    ProgramRunner,
    SimProcess,
    SimulatedPrograms,
    encode_data,
    rejected,
    remember_signal,
)

#: Finished results are kept this long (core0 expires result keys at 300 s).
RESULT_RETENTION_SECONDS = 300
RESULTS_KEPT = 2000

PROCESS_COMMANDS = ("core.system", "bash")

#: Parameter names each built-in accepts (``None``: any), by function.
_ACCEPTED: dict[Any, frozenset[str] | None] = {}


def accepted_arguments(function: Callable[..., Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """
    The arguments ``function`` accepts.  core0 decodes arguments into a
    typed structure and ignores fields it does not know (g8core 1.0.0 sends
    ``process.list {"id": null}``, for instance); so does the model.
    """
    key = getattr(function, "__func__", function)
    try:
        names = _ACCEPTED[key]
    except KeyError:
        parameters = inspect.signature(function).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            names = None
        else:
            names = frozenset(p.name for p in parameters)
        _ACCEPTED[key] = names
    if names is None or names.issuperset(arguments):
        return arguments
    return {k: v for k, v in arguments.items() if k in names}


class Agent:
    """
    A core0-like agent.

    :ivar container_id: 0 for a node's core0, the container id for coreX.
    :ivar listeners: called with ``(job, result)`` whenever a job ends with
        a result core0 would publish.
    :ivar start_listeners: called with ``job`` when a command starts to run
        (before a built-in's result exists).
    """

    container_id = 0

    def __init__(self, clock: Any, hostname: str, runner: ProgramRunner | None = None) -> None:
        self.clock = clock
        self.hostname = hostname
        self.runner: ProgramRunner = runner or SimulatedPrograms()
        self.jobs: dict[str, Job] = {}
        self.finished: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.processes: dict[int, SimProcess] = {}
        self.next_pid = 1
        self.files = SimFilesystem(clock)
        self.listeners: list[Callable[[Job, dict[str, Any]], None]] = []
        self.start_listeners: list[Callable[[Job], None]] = []
        #: The streamed output of jobs (the later protocol's ``stream:<id>``), by job id,
        #: kept as long as results; and who hears each entry as it is written.
        self.streams: OrderedDict[str, tuple[float, list[dict[str, Any]]]] = OrderedDict()
        self.output_listeners: list[Callable[[Job, dict[str, Any]], None]] = []
        self.boot_time = int(clock.seconds()) - 3600
        self._cpus: list[dict[str, Any]] = []
        self._mem: dict[str, Any] = {}
        self._nics: list[dict[str, Any]] = []
        self.node_key = "000000000000"
        self._commands: dict[str, Callable[..., Any]] | None = None

    # Clock and bookkeeping -------------------------------------------------

    def now_ms(self) -> int:
        return int(self.clock.seconds() * 1000)

    def spawn(self, name: str, cmdline: str, ppid: int = 1, job: Job | None = None,
              pid: int | None = None) -> SimProcess:
        """Start a simulated OS process."""
        if pid is None:
            pid = self.next_pid
        self.next_pid = max(self.next_pid, pid + 1)
        proc = SimProcess(pid=pid, ppid=ppid, name=name, cmdline=cmdline,
                          createtime=self.now_ms(), job=job)
        self.processes[pid] = proc
        return proc

    def job_started(self, job: Job) -> None:
        """A job starts to run: it enters the job table; the start listeners hear of it."""
        self.jobs[job.id] = job
        for listener in list(self.start_listeners):
            listener(job)

    def job_ended(self, job: Job, publish: bool) -> None:
        """Called by a job when it ends."""
        self.jobs.pop(job.id, None)
        assert job.result is not None
        self.finished[job.id] = (self.clock.seconds(), job.result)
        self.finished.move_to_end(job.id)
        self._expire_results()
        if publish:
            for listener in list(self.listeners):
                listener(job, job.result)

    def job_output(self, job: Job, level: int, text: str, flags: int = 0) -> None:
        """
        A streamed job wrote ``text``: one entry per line, as the later
        protocol pushes them (``{"core", "command", "message": {"message",
        "epoch", "meta"}}``); ``flags`` marks the last (the job ended).
        """
        lines = text.splitlines() if text else []
        if flags and not lines:
            lines = [""]
        kept = self.streams.setdefault(job.id, (self.clock.seconds(), []))[1]
        for line in lines:
            entry = {"core": self.container_id, "command": job.id,
                     "message": {"message": line, "epoch": int(self.clock.seconds() * 1e9),
                                 "meta": (level << 16) | flags}}
            kept.append(entry)
            for listener in list(self.output_listeners):
                listener(job, entry)
        self.streams[job.id] = (self.clock.seconds(), kept)
        self.streams.move_to_end(job.id)
        while self.streams:
            key, (when, _) = next(iter(self.streams.items()))
            if when >= self.clock.seconds() - RESULT_RETENTION_SECONDS and len(self.streams) <= RESULTS_KEPT:
                break
            del self.streams[key]

    def stream_of(self, job_id: str) -> list[dict[str, Any]]:
        """What a job streamed so far (``[]``: nothing, or it was not streamed)."""
        entry = self.streams.get(job_id)
        return list(entry[1]) if entry else []

    def _expire_results(self) -> None:
        horizon = self.clock.seconds() - RESULT_RETENTION_SECONDS
        while self.finished:
            key, (when, _) = next(iter(self.finished.items()))
            if when >= horizon and len(self.finished) <= RESULTS_KEPT:
                break
            del self.finished[key]

    def result_of(self, job_id: str) -> dict[str, Any] | None:
        """The stored result of a finished job, if still kept."""
        self._expire_results()
        entry = self.finished.get(job_id)
        return entry[1] if entry else None

    # Running commands --------------------------------------------------------

    def builtins(self) -> dict[str, Callable[..., Any]]:
        """The built-in commands, by core0 name."""
        fs = self.files
        return {
            "core.ping": self.ping,
            "core.state": self.state,
            "info.cpu": self.info_cpu,
            "info.disk": self.info_disk,
            "info.mem": self.info_mem,
            "info.nic": self.info_nic,
            "info.os": self.info_os,
            "job.list": self.job_list,
            "job.kill": self.job_kill,
            "process.list": self.process_list,
            "process.kill": self.process_kill,
            "filesystem.open": fs.open,
            "filesystem.read": fs.read,
            "filesystem.write": fs.write,
            "filesystem.close": fs.close,
            "filesystem.exists": fs.exists,
            "filesystem.list": fs.list,
            "filesystem.mkdir": fs.mkdir,
            "filesystem.remove": fs.remove,
            "filesystem.move": fs.move,
            "filesystem.chmod": fs.chmod,
            "filesystem.chown": fs.chown,
        }

    @property
    def commands(self) -> dict[str, Callable[..., Any]]:
        """``builtins()``, built once per agent."""
        if self._commands is None:
            self._commands = self.builtins()
        return self._commands

    def execute(
        self,
        command: str,
        arguments: dict[str, Any] | None,
        job_id: str | None = None,
        queue: str = "",
        tags: str = "",
        max_time: int = 0,
        stream: bool = False,
    ) -> Job:
        """
        Run one command as core0 does and return its job; a built-in has
        ended when this returns, a process may still run.

        :param stream: push the output as it is written (the later
            protocol's ``stream`` flag).
        """
        job_id = job_id or str(uuid.uuid4())
        if job_id in self.jobs:
            return rejected(self, job_id, command, DUPLICATE_ID, "duplicate job id", tags)
        builtins = self.commands
        if command not in builtins and command not in PROCESS_COMMANDS and command != "job.killall":
            return rejected(self, job_id, command, UNKNOWN_CMD, "", tags)
        job = Job(self, job_id, command, arguments if arguments is not None else {},
                  queue=queue, tags=tags, max_time=max_time, stream=stream)
        self.job_started(job)
        if arguments is None:
            job.finish(ERROR, encode_data("missing arguments"), level=20)
            return job
        if max_time:
            job.later(max_time, job.finish, "TIMEOUT")
        if command in PROCESS_COMMANDS:
            self._start_process(job, command, arguments)
        elif command == "job.killall":
            self.job_killall(except_id=job_id)
            job.finish(KILLED)
        else:
            try:
                function = builtins[command]
                value = function(**accepted_arguments(function, arguments))
            except CommandError as e:
                job.finish(ERROR, encode_data(str(e)), level=20)
            except TypeError as e:
                job.finish(ERROR, encode_data(f"invalid arguments: {e}"), level=20)
            else:
                if job.running:
                    job.finish(SUCCESS, encode_data(value), level=20)
        return job

    def _start_process(self, job: Job, command: str, arguments: dict[str, Any]) -> None:
        if command == "bash":
            name, args = "sh", ["-c", str(arguments.get("script", ""))]
            directory, env = "", {}  # type: tuple[str, dict[str, str]]
        else:
            name = str(arguments.get("name") or "")
            args = arguments.get("args") or []
            directory = arguments.get("dir") or ""
            env = arguments.get("env") or {}
            if not name or not isinstance(args, list):
                job.finish(ERROR, "invalid process arguments", streams=False)
                return
        stdin = str(arguments.get("stdin") or "")
        cmdline = " ".join([name, *map(str, args)])
        job.process = self.spawn(name.rsplit("/", 1)[-1], cmdline, job=job)
        self.runner.start(job, name, [str(a) for a in args], directory, env, stdin)

    # Built-ins shared by core0 and coreX --------------------------------------

    def ping(self) -> str:
        return "PONG Version: simulated @Revision: 0000000"

    def state(self) -> dict[str, Any]:
        procs = [j.process for j in self.jobs.values() if j.process is not None]
        return {
            "cpu": round(sum(0.1 for _ in procs) + 0.3, 2),
            "rss": 12 * 1024 * 1024 + sum(p.rss for p in procs),
            "vms": 240 * 1024 * 1024 + sum(p.vms for p in procs),
            "swap": 0,
            "debug": "",
        }

    def info_cpu(self) -> list[dict[str, Any]]:
        return self._cpus

    def info_mem(self) -> dict[str, Any]:
        return self._mem

    def info_nic(self) -> list[dict[str, Any]]:
        return self._nics

    def info_disk(self) -> list[dict[str, Any]]:
        return [
            {"device": "rootfs", "mountpoint": "/", "fstype": "rootfs", "opts": "rw"},
            {"device": "proc", "mountpoint": "/proc", "fstype": "proc", "opts": "rw,relatime"},
        ]

    def info_os(self) -> dict[str, Any]:
        return facts.os_info(self.hostname, self.node_key, self.boot_time,
                             int(self.clock.seconds()), len(self.processes))

    def job_list(self, id: str | None = None) -> list[dict[str, Any]]:  # noqa: A002
        if id:
            job = self.jobs.get(id)
            if job is None:
                raise CommandError(f"Process with id '{id}' doesn't exist")
            return [job.listing()]
        return [job.listing() for job in self.jobs.values()]

    def job_kill(self, id: str, signal: int = 0) -> bool:  # noqa: A002
        if signal and signal not in SIGNALS:
            raise CommandError(f"invalid signal {signal}")
        job = self.jobs.get(id)
        if job is None:
            return False
        job.signal(signal or 15)
        return True

    def job_killall(self, except_id: str | None = None) -> None:
        for job in list(self.jobs.values()):
            if job.id != except_id and not job.protected:
                job.signal(SIGKILL)

    def process_list(self, pid: int = 0) -> list[dict[str, Any]]:
        if pid:
            proc = self.processes.get(pid)
            return [proc.as_core0()] if proc else []
        return [p.as_core0() for p in sorted(self.processes.values(), key=lambda p: p.pid)]

    def process_kill(self, pid: int = 0, signal: int = 0, id: str | None = None) -> None:  # noqa: A002
        if id and not pid:
            # g8core 1.0.0 kills jobs with process.kill {"id"} (older agent).
            self.job_kill(id, signal)
            return
        if pid <= 1:
            raise CommandError("invalid PID")
        proc = self.processes.get(pid)
        if proc is None:
            raise CommandError("no such process")
        if signal == 0:
            return
        if signal not in SIGNALS:
            raise CommandError(f"invalid signal {signal}")
        remember_signal(proc, signal)
        if signal in STOPPING_SIGNALS:
            self.processes.pop(pid, None)
            if proc.job is not None and proc.job.running:
                proc.job.write(2, f"signal: {signal}\n")
                proc.job.finish(ERROR)
