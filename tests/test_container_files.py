"""
Files in a container (``.../filesystem``): upload (multipart/form-data,
part ``file``, destination in the query's ``path``), download (raw bytes),
delete (JSON body ``{"path": ...}``).
"""

from __future__ import annotations

import hashlib
import os

import pytest
import pytest_twisted

from testbed.http_api import Api, multipart_body
from tests.support.answers import error_of, expect, malformed_json_is_400, no_content
from tests.support.backends import SEED_CONTAINER, SEED_NODE, unique
from tests.support.resources import container

FAMILY = "container_files"
FILES = f"/nodes/{SEED_NODE}/containers/{SEED_CONTAINER}/filesystem"


async def upload(api: Api, path: str, content: bytes, base: str = FILES, part: str = "file") -> int:
    body, ctype = multipart_body([(part, "upload.bin", content)])
    reply = await api.post(base, body=body, headers={"Content-Type": ctype}, params={"path": path})
    return reply.status


@pytest_twisted.ensureDeferred
async def test_upload_download_delete(api: Api) -> None:
    path = f"/tmp/{unique('f')}.txt"
    content = b"line one\nline two\n\x00\xff binary tail"
    assert await upload(api, path, content) == 204
    reply = expect(await api.get(FILES, params={"path": path}), 200)
    assert reply.header("content-type") == "application/octet-stream"
    assert reply.body == content
    no_content(await api.delete(FILES, json={"path": path}))
    error_of(await api.get(FILES, params={"path": path}), 404, path)
    error_of(await api.delete(FILES, json={"path": path}), 404, path)


@pytest_twisted.ensureDeferred
async def test_upload_replaces_a_file(api: Api) -> None:
    path = f"/tmp/{unique('f')}"
    try:
        assert await upload(api, path, b"a much longer first version") == 204
        assert await upload(api, path, b"short") == 204
        assert (await api.get(FILES, params={"path": path})).body == b"short"
    finally:
        await api.delete(FILES, json={"path": path})


@pytest_twisted.ensureDeferred
async def test_empty_file(api: Api) -> None:
    path = f"/tmp/{unique('f')}"
    try:
        assert await upload(api, path, b"") == 204
        reply = expect(await api.get(FILES, params={"path": path}), 200)
        assert reply.body == b""
    finally:
        await api.delete(FILES, json={"path": path})


@pytest.mark.families("container_files", "containers")
@pytest_twisted.ensureDeferred
async def test_multi_mib_round_trip(api: Api) -> None:
    """A file of several MiB (not a multiple of any block size) comes back byte for byte."""
    content = os.urandom(3 * 1024 * 1024 + 12345)
    async with container(api, SEED_NODE) as name:
        base = f"/nodes/{SEED_NODE}/containers/{name}/filesystem"
        assert await upload(api, "/root/big.bin", content, base=base) == 204
        reply = expect(await api.get(base, params={"path": "/root/big.bin"}), 200)
        assert len(reply.body) == len(content)
        assert hashlib.sha256(reply.body).digest() == hashlib.sha256(content).digest()


@pytest.mark.families("container_files", "containers")
@pytest_twisted.ensureDeferred
async def test_files_belong_to_their_container(api: Api) -> None:
    path = f"/tmp/{unique('f')}"
    async with container(api, SEED_NODE) as name:
        base = f"/nodes/{SEED_NODE}/containers/{name}/filesystem"
        assert await upload(api, path, b"mine", base=base) == 204
        error_of(await api.get(FILES, params={"path": path}), 404)


@pytest_twisted.ensureDeferred
async def test_unknown_container_is_404(api: Api) -> None:
    base = f"/nodes/{SEED_NODE}/containers/nosuchcontainer/filesystem"
    error_of(await api.get(base, params={"path": "/etc/hostname"}), 404, "nosuchcontainer")
    body, ctype = multipart_body([("file", "x", b"x")])
    reply = await api.post(base, body=body, headers={"Content-Type": ctype}, params={"path": "/tmp/x"})
    error_of(reply, 404, "nosuchcontainer")
    error_of(await api.delete(base, json={"path": "/etc/hostname"}), 404, "nosuchcontainer")


# Validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "words"), [
    ({}, ["path", "required"]),
    ({"path": ""}, ["path", "required"]),
    ({"path": "tmp/x"}, ["path", "absolute"]),
    ({"path": "/tmp/../etc/x"}, ["path", "normalised"]),
])
@pytest_twisted.ensureDeferred
async def test_bad_path_query_is_400(api: Api, query: dict[str, str], words: list[str]) -> None:
    body, ctype = multipart_body([("file", "x", b"x")])
    reply = await api.post(FILES, body=body, headers={"Content-Type": ctype}, params=query)
    error_of(reply, 400, *words)
    error_of(await api.get(FILES, params=query), 400, *words)


@pytest_twisted.ensureDeferred
async def test_upload_must_be_multipart(api: Api) -> None:
    reply = await api.post(FILES, json={"content": "x"}, params={"path": "/tmp/x"})
    error_of(reply, 415, "multipart/form-data")


@pytest_twisted.ensureDeferred
async def test_upload_needs_a_file_part(api: Api) -> None:
    path = f"/tmp/{unique('f')}"
    assert await upload(api, path, b"x", part="other") == 400
    body, ctype = multipart_body([("other", "x", b"x")])
    reply = await api.post(FILES, body=body, headers={"Content-Type": ctype}, params={"path": path})
    error_of(reply, 400, "file")
    error_of(await api.get(FILES, params={"path": path}), 404)


@pytest_twisted.ensureDeferred
async def test_truncated_multipart_is_400(api: Api) -> None:
    body, ctype = multipart_body([("file", "x", b"some content")])
    reply = await api.post(FILES, body=body[:-30], headers={"Content-Type": ctype},
                           params={"path": f"/tmp/{unique('f')}"})
    error_of(reply, 400, "multipart")


@pytest_twisted.ensureDeferred
async def test_upload_into_a_missing_directory_is_400(api: Api) -> None:
    body, ctype = multipart_body([("file", "x", b"x")])
    reply = await api.post(FILES, body=body, headers={"Content-Type": ctype},
                           params={"path": "/nosuchdir/x"})
    error_of(reply, 400, "/nosuchdir/x")


@pytest_twisted.ensureDeferred
async def test_delete_body(api: Api) -> None:
    await malformed_json_is_400(api, "DELETE", FILES)
    error_of(await api.delete(FILES, json={}), 400, "missing", "path")
    error_of(await api.delete(FILES, json={"path": 5}), 400, "path", "string")
    error_of(await api.delete(FILES, json={"path": "etc/hostname"}), 400, "path", "absolute")
    expect(await api.get(FILES, params={"path": "/etc/hostname"}), 200)


@pytest_twisted.ensureDeferred
async def test_bad_container_name_is_400(api: Api) -> None:
    reply = await api.get(f"/nodes/{SEED_NODE}/containers/a%20b/filesystem", params={"path": "/x"})
    error_of(reply, 400, "containername")
