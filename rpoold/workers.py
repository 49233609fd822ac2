"""
``server.workers = N``: the daemon listens once and serves from N
processes.

The parent (``twistd rpoold`` as started) checks the configuration and the
record store, listens (a busy port is one line at start-up, as with one
process), stops accepting on that socket itself, and starts N children:
``twistd rpoold`` again, with the same configuration and ``--worker-fd``,
the listening socket as that descriptor.  Each child builds the daemon as
a single process does (its own backends, connection pools and record
store connections; the records are shared through the store) and adopts
the socket (``reactor.adoptStreamPort``): the kernel hands each new
connection to one of the children waiting in ``accept``.

The parent restarts a child that exits while the daemon runs (at once the
first time, then after a delay that doubles while children keep dying
young, up to ``RESTART_MAX``), and on SIGTERM sends SIGTERM to each child,
which stops as a single daemon does (stops accepting, lets its requests
finish within ``server.grace_period``, closes its backends), waits for them
(``grace_period`` + ``BACKEND_STOP`` + ``STOP_MARGIN`` seconds, then
SIGKILL) and exits 0.  A child whose parent is gone (its standard input, a
pipe from the parent, reaches its end) stops the same way.

Metrics: the children count in prometheus-client's multiprocess mode, in
a directory the parent makes (``PROMETHEUS_MULTIPROC_DIR``) and removes when
it stops; whichever child answers ``/metrics`` adds up every child's
figures (``rpoold.metrics.served_registry``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.logger import ILogObserver, Logger
from twisted.python.failure import Failure

log = Logger()

#: Seconds before a child that died young is started again, at first.
RESTART_MIN = 0.5
#: The longest such delay.
RESTART_MAX = 10.0
#: A child that served this many seconds before it died is started again at once.
YOUNG = 10.0
#: Seconds the parent waits for its children beyond their own stop.
STOP_MARGIN = 5.0
#: The environment variable prometheus-client's multiprocess mode reads.
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def listen_for_workers(endpoint: Any) -> Any:
    """
    Listen on ``endpoint`` without accepting (the workers will).

    :raises twisted.internet.error.CannotListenError: as ``endpoint.listen``.
    """
    outcome: list[Any] = []
    endpoint.listen(Factory.forProtocol(Protocol)).addBoth(outcome.append)
    if not outcome:
        raise RuntimeError(f"{endpoint!r} does not listen at once; workers need a stream socket")
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    port = outcome[0]
    port.stopReading()
    return port


def adopt(fd: int, factory: Any, reactor: Any) -> IListeningPort:
    """
    Serve ``factory`` on the listening socket ``fd`` (its family found from
    the socket itself); ``fd`` is closed (the reactor keeps a copy).
    """
    probe = socket.socket(fileno=fd)
    family = probe.family
    probe.detach()
    port: IListeningPort = reactor.adoptStreamPort(fd, family, factory)
    os.close(fd)
    return port


class AdoptedPortService(Service):
    """
    A worker's web service: the parent's listening socket, adopted when
    made (:func:`adopt`), and closed (this process's copy) when it stops.
    """

    def __init__(self, fd: int, factory: Any, reactor: Any) -> None:
        self.port = adopt(fd, factory, reactor)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        stop: Callable[[], Any] = self.port.stopListening
        stopped: Deferred[None] = maybeDeferred(stop)
        return stopped


class ParentWatch:
    """
    A worker's standard input, a pipe from its parent: when it reaches its
    end (the parent is gone, whatever killed it), ``gone`` is called.
    """

    def __init__(self, reactor: Any, gone: Callable[[], None], fd: int = 0) -> None:
        self.reactor = reactor
        self.gone = gone
        self.fd = fd
        os.set_blocking(fd, False)
        reactor.addReader(self)

    def fileno(self) -> int:
        return self.fd

    def logPrefix(self) -> str:
        return "parent"

    def doRead(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.reactor.removeReader(self)
            self.connectionLost(Failure(EOFError()))

    def connectionLost(self, reason: Failure) -> None:
        # The reactor calls it itself for a pipe whose other end closed.
        if self.fd < 0:
            return
        self.fd = -1
        log.warn("the parent process is gone: stopping")
        self.gone()


class _Child(ProcessProtocol):
    def __init__(self, supervisor: Supervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.pid: int | None = None
        self.started = 0.0
        self.ended: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.pid = self.transport.pid  # type: ignore[union-attr]
        self.started = self.supervisor.clock.seconds()

    def processEnded(self, reason: Failure) -> None:
        self.supervisor.child_ended(self, reason)
        self.ended.callback(None)


class Supervisor(Service):
    """
    The parent of the workers (see the module docstring).

    :param port: the listening socket (not accepting).
    :param argv: the command line of worker ``index`` (``--worker-fd`` is
        the socket's descriptor in the child as in this process).
    :param count: how many workers.
    :param grace_period: ``server.grace_period``.
    :param backend_stop: seconds a worker's backends may take to stop.
    :param log_observer: if given, twistd logs through it (as
        ``DaemonService``'s).
    """

    def __init__(self, port: Any, argv: Callable[[int], list[str]], count: int, grace_period: float,
                 backend_stop: float, clock: Any = None, metrics_dir: str | None = None,
                 log_observer: Any = None) -> None:
        from twisted.internet import reactor

        self.port = port
        self.fd: int = port.fileno()
        self.argv = argv
        self.count = count
        self.grace_period = grace_period
        self.backend_stop = backend_stop
        self.clock: Any = clock if clock is not None else reactor
        self.metrics_dir = metrics_dir or tempfile.mkdtemp(prefix="rpoold-metrics-")
        self.children: dict[int, _Child] = {}
        self.delays: dict[int, float] = {}
        self.restarts: dict[int, Any] = {}
        self.stopping = False
        self.log_observer = log_observer
        self._previous_sigterm: Any = None

    def setServiceParent(self, parent: Any) -> None:
        if self.log_observer is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.log_observer)
        super().setServiceParent(parent)

    # Starting and restarting -------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.clock.callWhenRunning(self._started)

    def _started(self) -> None:
        try:
            self._previous_sigterm = signal.signal(signal.SIGTERM, self._sigterm)
        except ValueError:  # not the main thread (embedded use): leave it
            self._previous_sigterm = None
        log.info("serving with {count} worker processes", count=self.count)
        for index in range(self.count):
            self.spawn(index)

    def spawn(self, index: int) -> None:
        """Start worker ``index``."""
        self.restarts.pop(index, None)
        if self.stopping:
            return
        child = _Child(self, index)
        env = dict(os.environ)
        env[METRICS_DIR] = self.metrics_dir
        argv = self.argv(index)
        self.clock.spawnProcess(child, argv[0], argv, env=env,
                                childFDs={0: "w", 1: 1, 2: 2, self.fd: self.fd})
        self.children[index] = child
        log.info("worker {index} started (pid {pid})", index=index, pid=child.pid)

    def child_ended(self, child: _Child, reason: Failure) -> None:
        if self.children.get(child.index) is child:
            del self.children[child.index]
        if child.pid is not None:
            _forget_metrics_of(child.pid, self.metrics_dir)
        if self.stopping:
            return
        ended: Any = reason.value
        what = (f"signal {ended.signal}" if getattr(ended, "signal", None)
                else f"status {getattr(ended, 'exitCode', None)}")
        lived = self.clock.seconds() - child.started
        delay = 0.0
        if lived < YOUNG:
            delay = self.delays.get(child.index, RESTART_MIN / 2) * 2
            delay = min(max(delay, RESTART_MIN), RESTART_MAX)
        self.delays[child.index] = delay
        log.warn("worker {index} (pid {pid}) ended ({what}) after {lived:.1f} s; "
                 "starting another in {delay:g} s",
                 index=child.index, pid=child.pid, what=what, lived=lived, delay=delay)
        self.restarts[child.index] = self.clock.callLater(delay, self.spawn, child.index)

    # Stopping -------------------------------------------------------------------------

    def _sigterm(self, number: int, frame: Any) -> None:
        self.clock.callFromThread(self._stop_requested)

    def _stop_requested(self) -> None:
        if self.stopping:
            return
        log.info("SIGTERM: stopping the workers (grace period {grace:g} s)", grace=self.grace_period)
        if self.clock.running:
            self.clock.stop()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self.stopping = True
        for call in self.restarts.values():
            if call.active():
                call.cancel()
        self.restarts.clear()
        children = list(self.children.values())
        for child in children:
            _signal(child, "TERM")
        waits: list[Deferred[Any]] = [child.ended for child in children]
        limit = self.grace_period + self.backend_stop + STOP_MARGIN
        killer = self.clock.callLater(limit, self._kill, children)

        def stopped(_: Any) -> Deferred[None]:
            if killer.active():
                killer.cancel()
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            log.info("stopped: {count} worker(s) ended", count=len(children))
            d = maybeDeferred(self.port.stopListening)
            return d.addCallback(lambda _: None)

        if not waits:
            return stopped(None)
        return DeferredList(waits).addCallback(stopped)

    def _kill(self, children: list[_Child]) -> None:
        for child in children:
            if not child.ended.called:
                log.warn("worker {index} (pid {pid}) did not stop in time: killing it",
                         index=child.index, pid=child.pid)
                _signal(child, "KILL")


def _signal(child: _Child, name: str) -> None:
    try:
        child.transport.signalProcess(name)  # type: ignore[union-attr]
    except Exception:  # it is gone already
        pass


def _forget_metrics_of(pid: int, directory: str) -> None:
    """Drop the gauges of a worker that ended (its counters keep counting)."""
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)
    except Exception:
        log.failure("the metrics of worker pid {pid} were not dropped", pid=pid)


def worker_argv(twistd_options: Any, config: str | None, port: str | None, fd: int,
                index: int, count: int) -> list[str]:
    """
    The command line of a worker: ``twistd`` with the logging options this
    one was given, then ``rpoold`` with the same configuration.
    """
    argv = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
            "--nodaemon", "--pidfile="]
    get = getattr(twistd_options, "get", lambda key, default=None: default)
    logfile = get("logfile")
    if not get("nodaemon") and not logfile and not get("syslog") and not get("logger"):
        logfile = "twistd.log"  # where twistd logs when it runs as a daemon
    if logfile and logfile != "-":
        argv += ["--logfile", os.path.abspath(logfile)]
    if get("logger"):
        argv += ["--logger", get("logger")]
    if get("syslog"):
        argv += ["--syslog", "--prefix", get("prefix") or "twisted"]
    if get("reactor"):
        argv += ["--reactor", get("reactor")]
    argv.append("rpoold")
    if config is not None:
        argv += ["--config", os.path.abspath(config)]
    if port is not None:
        argv += ["--port", port]
    argv += ["--worker-fd", str(fd), "--worker", f"{index}/{count}"]
    return argv

