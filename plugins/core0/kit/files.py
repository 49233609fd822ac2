"""
Files in containers (``IContainerFiles``), with the ``filesystem.*``
commands of the container's agent; contents travel base64-encoded.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from plugins.core0.kit.containers import ContainerIndex
from plugins.core0.kit.directory import NodeDirectory
from plugins.core0.protocol import SUCCESS, Result, check
from rpoold.contract.wire import DeleteFile
from rpoold.errors import BadRequest, NotFound, RpoolError
from rpoold.interfaces import IContainerFiles, IFileReader
from rpoold.nodes import ICommandClient

log = Logger()

#: Permission bits of uploaded files (0644).
FILE_PERM = 420


@implementer(IFileReader)
class ContainerFileReader:
    """A file open for reading in a container, read block by block."""

    def __init__(self, index: ContainerIndex, client: ICommandClient, name: str, fd: str) -> None:
        self.index = index
        self.client = client
        self.name = name
        self.fd = fd
        self.closed = False

    def read_block(self) -> Deferred[bytes]:
        d = ensureDeferred(self.index.call(self.client, self.name, "filesystem.read", fd=self.fd))
        return d.addCallback(lambda data: base64.b64decode(data or ""))

    def close(self) -> Deferred[None]:
        if self.closed:
            return succeed(None)
        self.closed = True
        d = ensureDeferred(self.index.call(self.client, self.name, "filesystem.close", fd=self.fd))

        def failed(failure: Any) -> None:
            log.warn("closing {fd} in container {name} failed: {why}", fd=self.fd, name=self.name,
                     why=failure.getErrorMessage())

        return d.addCallbacks(lambda _: None, failed)


@implementer(IContainerFiles)
class ContainerFiles:
    """
    :param nodes: the nodes and their clients.
    :param index: the containers by name.
    """

    def __init__(self, nodes: NodeDirectory[Any], index: ContainerIndex) -> None:
        self.nodes = nodes
        self.index = index

    async def _exists(self, client: ICommandClient, name: str, path: str) -> None:
        if not await self.index.call(client, name, "filesystem.exists", path=path):
            raise NotFound(f"'{path}' does not exist in container '{name}'")

    async def file_upload(self, nodeid: str, containername: str, path: str,
                          blocks: Iterable[bytes]) -> None:
        client = await self.nodes.client(nodeid)
        opened: Result = await self.index.run(client, containername, "filesystem.open",
                                              {"file": path, "mode": "w", "perm": FILE_PERM})
        if opened.state != SUCCESS:
            raise BadRequest(f"cannot write '{path}': {opened.message()}")
        fd = opened.value()
        try:
            for block in blocks:
                await self.index.call(client, containername, "filesystem.write",
                                      fd=fd, block=base64.b64encode(block).decode("ascii"))
        finally:
            try:
                await self.index.call(client, containername, "filesystem.close", fd=fd)
            except RpoolError as e:
                log.warn("closing {path} in container {name} failed: {why}", path=path,
                         name=containername, why=e.message)

    async def file_download(self, nodeid: str, containername: str, path: str) -> ContainerFileReader:
        client = await self.nodes.client(nodeid)
        await self._exists(client, containername, path)
        opened: Result = await self.index.run(client, containername, "filesystem.open",
                                              {"file": path, "mode": "r", "perm": FILE_PERM})
        if opened.state != SUCCESS:
            raise BadRequest(f"cannot read '{path}': {opened.message()}")
        return ContainerFileReader(self.index, client, containername, check(opened, nodeid).value())

    async def file_delete(self, nodeid: str, containername: str, body: DeleteFile) -> None:
        client = await self.nodes.client(nodeid)
        await self._exists(client, containername, body["path"])
        await self.index.call(client, containername, "filesystem.remove", path=body["path"])
