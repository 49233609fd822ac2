"""
A small core0 agent for tests and benchmarks, running on the reactor against a real
``redis-server``: it pops ``core:default`` as core0 does, sets the pickup
flag, and answers either from a script (a function of the payload, for
answers a simulator rarely gives: ERROR, TIMEOUT, UNKNOWN_CMD, duplicate
ids, silence) or from a ``plugins.poolsim`` node.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import txredisapi
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred

from plugins.poolsim.jobs import Job
from plugins.poolsim.node import Node

#: A script: payload -> the result object to publish, or ``None`` for no answer.
Script = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def result(payload: dict[str, Any], state: str = "SUCCESS", data: Any = None, level: int = 20,
           streams: list[str] | None = None) -> dict[str, Any]:
    """A result object answering ``payload``; ``data`` is JSON-encoded at level 20."""
    text = json.dumps(data) if level == 20 else (data or "")
    answer = {"id": payload["id"], "command": payload.get("command", ""), "data": text,
              "level": level, "state": state, "starttime": 1, "time": 0, "tags": "", "container": 0}
    if streams is not None:
        answer["streams"] = streams
    return answer


class AgentOnRedis:
    """
    :param port: the Redis port; ``db`` its database, ``password`` its
        password.
    :param script: answers by payload (scripted mode).
    :param node: a model node to serve (model mode).
    """

    def __init__(self, port: int, *, script: Script | None = None, node: Node | None = None,
                 db: int = 0, password: str | None = None) -> None:
        self.port = port
        self.db = db
        self.password = password
        self.script = script
        self.node = node
        self.received: list[dict[str, Any]] = []
        self._pop: Any = None
        self._push: Any = None
        self._loop: Deferred[None] | None = None
        self.running = False

    async def start(self) -> AgentOnRedis:
        self._pop = await txredisapi.Connection("127.0.0.1", self.port, dbid=self.db,
                                                password=self.password, reconnect=False)
        self._push = await txredisapi.Connection("127.0.0.1", self.port, dbid=self.db,
                                                 password=self.password, reconnect=False)
        if self.node is not None:
            self.node.listeners.append(lambda job, answer: self._publish(answer))
            self.node.start_listeners.append(self._flag_started)
        self.running = True
        self._loop = ensureDeferred(self._serve())
        self._loop.addErrback(lambda f: None)
        return self

    async def stop(self) -> None:
        self.running = False
        for conn in (self._pop, self._push):
            if conn is not None:
                await conn.disconnect()
        if self._loop is not None:
            await self._loop

    async def _serve(self) -> None:
        while self.running:
            popped = await self._pop.blpop(["core:default"], timeout=0)
            try:
                command = json.loads(popped[1])
            except ValueError:
                continue
            if not isinstance(command, dict) or not command.get("id"):
                continue
            self.received.append(command)
            if self.node is not None:
                await self.node.when_running()
                self._run_on_node(command)
            else:
                await self._flag(command["id"])
                assert self.script is not None
                answer = self.script(command)
                if answer is not None:
                    self._publish(answer)

    def _run_on_node(self, command: dict[str, Any]) -> None:
        assert self.node is not None
        name = command.get("command", "")
        if name == "core.reboot":
            reactor.callLater(0, self.node.reboot)
            return
        job: Job = self.node.execute(name, command.get("arguments"), job_id=command["id"])
        if job.result is not None and job.result["state"] in ("UNKNOWN_CMD", "DUPILICATE_ID"):
            self._publish(job.result)

    def _flag_started(self, job: Job) -> None:
        """A model job started: set its pickup flag (as core0 does)."""
        self._flag(job.id)

    def _flag(self, job_id: str) -> Deferred[Any]:
        return self._push.rpush(f"result:{job_id}:flag", "")

    def _publish(self, answer: dict[str, Any]) -> None:
        key = f"result:{answer['id']}"
        d = self._push.expire(f"{key}:flag", 300)
        d.addCallback(lambda _: self._push.rpush(key, json.dumps(answer)))
        d.addCallback(lambda _: self._push.expire(key, 300))
        d.addErrback(lambda f: None)
