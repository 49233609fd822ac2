"""
The server's ``/openapi.json``, cached per server URL in the user's cache
directory (``~/.cache/rpool/openapi-<hash of the URL>.json`` on Linux) for
``spec_ttl`` seconds (300 by default), so that a run of ``rpool`` costs one
request, not two.  It is fetched again when older than that, when the
cached copy is unreadable, on ``--refresh``, and once when an operation
asked for is not in the cached copy (a server upgraded since).  The token
is sent for it like for any request; the document holds nothing secret.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rpool.client import ApiClient
from rpool.exits import ApiError, RpoolError, for_status
from rpool.spec import Spec

DOCUMENT_PATH = "/openapi.json"


def cache_file(directory: Path, url: str) -> Path:
    """The cache file of the server at ``url``."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:20]
    return directory / f"openapi-{digest}.json"


class SpecCache:
    """
    :param directory: the cache directory (``None``: no cache, fetch each run).
    :param ttl: seconds a cached document is used.
    """

    def __init__(self, client: ApiClient, directory: Path | None, ttl: float) -> None:
        self.client = client
        self.directory = directory
        self.ttl = ttl
        #: Whether the document in use was fetched during this run.
        self.fresh = False

    def load(self, refresh: bool = False) -> Spec:
        """
        The server's document: the cached copy while young enough, else fetched.

        :raises RpoolError: it cannot be fetched (the server's error, unreachable, not OpenAPI).
        """
        if not refresh and self.directory is not None:
            cached = self._read()
            if cached is not None:
                return cached
        return self.fetch()

    def fetch(self) -> Spec:
        """Fetch the document and cache it."""
        try:
            answer = self.client.request("GET", DOCUMENT_PATH)
        except ApiError as e:
            raise RpoolError(f"the server has no usable {DOCUMENT_PATH}: {e.status}: {e.error}",
                             for_status(e.status)) from None
        try:
            document = answer.json()
            spec = Spec(document)
        except ValueError as e:
            raise RpoolError(f"{self.client.url}{DOCUMENT_PATH} is not an OpenAPI document: {e}",
                             for_status(502)) from None
        self.fresh = True
        self._write(document)
        return spec

    def _read(self) -> Spec | None:
        assert self.directory is not None
        path = cache_file(self.directory, self.client.url)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("url") != self.client.url or time.time() - float(entry["fetched"]) > self.ttl:
                return None
            return Spec(entry["document"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write(self, document: dict[str, Any]) -> None:
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            entry = {"url": self.client.url, "fetched": time.time(), "document": document}
            # Written aside, then renamed: a concurrent run reads a whole file or none.
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".openapi-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(entry, f)
            os.replace(temporary, cache_file(self.directory, self.client.url))
        except OSError:
            pass  # A cache that cannot be written only costs a fetch next time.
