"""
The filesystem of a simulated agent, with core0's ``filesystem.*``
commands (open files are kept in a table of descriptors).
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import uuid
from dataclasses import dataclass, field
from typing import Any

from plugins.poolsim.jobs import CommandError

READ_BLOCK = 512 * 1024
DESCRIPTOR_IDLE_SECONDS = 300


@dataclass
class _Open:
    path: str
    readable: bool
    writable: bool
    position: int = 0
    touched: float = 0.0


@dataclass
class SimFilesystem:
    """Files and directories held in memory; paths are absolute."""

    clock: Any
    files: dict[str, bytearray] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {"/"})
    descriptors: dict[str, _Open] = field(default_factory=dict)

    @staticmethod
    def _norm(path: str) -> str:
        if not isinstance(path, str) or not path.startswith("/"):
            raise CommandError(f"path '{path}' is not absolute")
        return posixpath.normpath(path).replace("//", "/")

    def _parent_ok(self, path: str) -> None:
        if posixpath.dirname(path) not in self.dirs:
            raise CommandError(f"open {path}: no such file or directory")

    # Plain helpers used by the seed and by simulated programs -----------

    def put(self, path: str, content: bytes, mode: int = 0o644) -> None:
        path = self._norm(path)
        self.mkdir(posixpath.dirname(path))
        self.files[path] = bytearray(content)
        self.modes[path] = mode

    def read_all(self, path: str) -> bytes:
        path = self._norm(path)
        if path in self.dirs:
            raise CommandError("is a directory")
        if path not in self.files:
            raise CommandError("no such file or directory")
        return bytes(self.files[path])

    # filesystem.* --------------------------------------------------------

    def open(self, file: str, mode: str = "r", perm: int = 0o644) -> str:
        path = self._norm(file)
        letters = [c for c in mode if c in "rwax"]
        for c in mode:
            if c not in "rwax+":
                raise CommandError(f"unknown mode '{c}'")
        if mode == "wx":
            # g8core 1.0.0 uploads with "wx": write and create, no truncation.
            letters = ["w"]
            truncate = False
        else:
            truncate = True
        if len(letters) != 1:
            raise CommandError("rwax modes has to be used once and only once")
        kind = letters[0]
        plus = "+" in mode
        if path in self.dirs:
            raise CommandError(f"open {path}: is a directory")
        exists = path in self.files
        if kind == "r":
            if not exists:
                raise CommandError(f"open {path}: no such file or directory")
        else:
            self._parent_ok(path)
            if kind == "x" and exists:
                raise CommandError(f"open {path}: file exists")
            if not exists:
                self.files[path] = bytearray()
                self.modes[path] = perm & 0o7777
            elif kind == "w" and truncate:
                self.files[path] = bytearray()
        fd = str(uuid.uuid4())
        handle = _Open(path, readable=kind == "r" or plus, writable=kind != "r" or plus,
                       touched=self.clock.seconds())
        if kind == "a":
            handle.position = len(self.files[path])
        self.descriptors[fd] = handle
        return fd

    def _descriptor(self, fd: str) -> _Open:
        handle = self.descriptors.get(fd)
        now = self.clock.seconds()
        if handle is None or now - handle.touched > DESCRIPTOR_IDLE_SECONDS:
            self.descriptors.pop(fd, None)
            raise CommandError(f"unknown file description '{fd}'")
        handle.touched = now
        return handle

    def read(self, fd: str) -> str:
        handle = self._descriptor(fd)
        if not handle.readable:
            raise CommandError("file not open for reading")
        content = self.files.get(handle.path, bytearray())
        block = bytes(content[handle.position : handle.position + READ_BLOCK])
        handle.position += len(block)
        return base64.b64encode(block).decode("ascii")

    def write(self, fd: str, block: str) -> None:
        handle = self._descriptor(fd)
        if not handle.writable:
            raise CommandError("file not open for writing")
        cleaned = "".join(block.split())
        try:
            data = base64.b64decode(cleaned, validate=True)
        except (binascii.Error, ValueError) as e:
            raise CommandError(f"invalid base64 block: {e}") from None
        content = self.files.setdefault(handle.path, bytearray())
        end = handle.position + len(data)
        if len(content) < handle.position:
            content.extend(b"\0" * (handle.position - len(content)))
        content[handle.position : end] = data
        handle.position = end

    def close(self, fd: str) -> None:
        self.descriptors.pop(fd, None)

    def exists(self, path: str) -> bool:
        path = self._norm(path)
        return path in self.files or path in self.dirs

    def list(self, path: str) -> list[dict[str, Any]]:
        path = self._norm(path)
        if path not in self.dirs:
            raise CommandError(f"open {path}: no such file or directory")
        prefix = path.rstrip("/") + "/"
        entries = []
        for d in sorted(self.dirs):
            if d != path and d.startswith(prefix) and "/" not in d[len(prefix):]:
                entries.append({"name": d[len(prefix):], "size": 4096, "mode": 0o755, "is_dir": True})
        for f in sorted(self.files):
            if f.startswith(prefix) and "/" not in f[len(prefix):]:
                entries.append({"name": f[len(prefix):], "size": len(self.files[f]),
                                "mode": self.modes.get(f, 0o644), "is_dir": False})
        return entries

    def mkdir(self, path: str) -> None:
        path = self._norm(path)
        if path in self.files:
            raise CommandError(f"mkdir {path}: file exists")
        while path not in self.dirs:
            self.dirs.add(path)
            path = posixpath.dirname(path)

    def remove(self, path: str) -> None:
        path = self._norm(path)
        prefix = path.rstrip("/") + "/"
        self.files.pop(path, None)
        self.modes.pop(path, None)
        for f in [f for f in self.files if f.startswith(prefix)]:
            del self.files[f]
            self.modes.pop(f, None)
        if path != "/":
            self.dirs.discard(path)
            self.dirs -= {d for d in self.dirs if d.startswith(prefix)}

    def move(self, path: str, destination: str) -> None:
        path, destination = self._norm(path), self._norm(destination)
        if path in self.files:
            self._parent_ok(destination)
            self.files[destination] = self.files.pop(path)
            self.modes[destination] = self.modes.pop(path, 0o644)
            return
        if path not in self.dirs:
            raise CommandError(f"rename {path}: no such file or directory")
        prefix = path.rstrip("/") + "/"
        for f in [f for f in self.files if f.startswith(prefix)]:
            self.files[destination + f[len(path):]] = self.files.pop(f)
        moved = {d for d in self.dirs if d == path or d.startswith(prefix)}
        self.dirs -= moved
        self.dirs |= {destination + d[len(path):] for d in moved}

    def chmod(self, path: str, mode: int, recursive: bool = False) -> None:
        path = self._norm(path)
        if path not in self.files and path not in self.dirs:
            raise CommandError(f"chmod {path}: no such file or directory")
        if path in self.files:
            self.modes[path] = mode
        if recursive:
            prefix = path.rstrip("/") + "/"
            for f in self.files:
                if f.startswith(prefix):
                    self.modes[f] = mode

    def chown(self, path: str, user: str, group: str, recursive: bool = False) -> None:
        path = self._norm(path)
        if path not in self.files and path not in self.dirs:
            raise CommandError(f"chown {path}: no such file or directory")
