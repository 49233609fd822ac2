"""
Reading one file out of a ``multipart/form-data`` upload without holding
it in memory.

twisted.web spools a large request body to a temporary file; the
``multipart`` library parses that file incrementally.  The body is read
twice: once to check it (well-formed, has the part) before any backend is
called, once to hand the part's bytes to the backend block by block.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import multipart

from rpoold.errors import BadRequest, UnsupportedMediaType

READ_SIZE = 64 * 1024


def _boundary(request: Any) -> str:
    ctype = request.getHeader(b"Content-Type")
    if ctype is None:
        raise BadRequest("file upload needs a multipart/form-data body")
    media, options = multipart.parse_options_header(ctype.decode("latin-1"))
    if media.lower() != "multipart/form-data":
        raise UnsupportedMediaType(
            f"file upload needs a multipart/form-data body, not {media}"
        )
    boundary = options.get("boundary")
    if not boundary:
        raise BadRequest("multipart/form-data body without a boundary")
    return str(boundary)


def _part_chunks(content: BinaryIO, boundary: str, name: str) -> Iterator[bytes]:
    """Yield the data of the first part called ``name``, as parsed."""
    content.seek(0)
    inside = False
    done = False
    with multipart.PushMultipartParser(boundary) as parser:
        while not parser.closed:
            chunk = content.read(READ_SIZE)
            for event in parser.parse(chunk):
                if done:
                    continue
                if isinstance(event, multipart.MultipartSegment):
                    inside = event.name == name
                elif event is None:
                    if inside:
                        done = True
                    inside = False
                elif inside:
                    yield bytes(event)
            if not chunk:
                break
    if not done:
        raise BadRequest(f"multipart body has no complete '{name}' part")


def file_part_blocks(request: Any, name: str, block_size: int) -> Iterator[bytes]:
    """
    Check the upload, then return an iterator over the part's content in
    blocks of at most ``block_size`` bytes (the last may be shorter; an
    empty file gives no block).

    :raises BadRequest: not multipart, malformed, or no part ``name``.
    """
    boundary = _boundary(request)
    content: BinaryIO = request.content
    try:
        for _ in _part_chunks(content, boundary, name):
            pass
    except multipart.MultipartError as e:
        raise BadRequest(f"malformed multipart body: {e}") from None
    return _reblock(_part_chunks(content, boundary, name), block_size)


def _reblock(chunks: Iterator[bytes], block_size: int) -> Iterator[bytes]:
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= block_size:
            yield bytes(pending[:block_size])
            del pending[:block_size]
    if pending:
        yield bytes(pending)
