"""Outbound bodies of the IM adapters: files streamed raw or as base64, spliced into
JSON, each pass whole and as long as announced."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from astrlite.files.attachments import OpenedFile
from astrlite.im.base import SendError
from astrlite.im.body import READ_SLICE, Body, FilePiece, InlineFiles


def open_file(path: Path) -> OpenedFile:
    return OpenedFile(path.open("rb", buffering=0), path.stat().st_size, 0.0)


async def read_all(body: Body) -> bytes:
    return b"".join([chunk async for chunk in body])


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[OpenedFile]:
    # Several slices, and a size that is no multiple of 3, so base64 needs padding.
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(READ_SLICE * 2 + 1001))
    file = open_file(path)
    yield file
    file.close()


@pytest.mark.anyio
@pytest.mark.parametrize("as_base64", [False, True])
async def test_a_file_in_slices_reads_whole_every_pass(opened: OpenedFile, as_base64: bool) -> None:
    content = os.pread(opened.file.fileno(), opened.size, 0)
    expected = b"<" + (base64.b64encode(content) if as_base64 else content) + b">"
    body = Body([b"<", FilePiece(opened, base64=as_base64), b">"])
    assert body.length == len(expected)
    assert await read_all(body) == expected
    assert await read_all(body) == expected  # a second pass, as signing and retries need


@pytest.mark.anyio
async def test_files_spliced_into_json(opened: OpenedFile) -> None:
    inline = InlineFiles()
    document = {
        "text": "astrlite-inline-0 looks like a marker but is not one",
        "file": "base64://" + inline.marker(opened),
        "again": inline.marker(opened),
    }
    body = inline.body(document)
    raw = await read_all(body)
    assert len(raw) == body.length
    parsed = json.loads(raw)
    content = os.pread(opened.file.fileno(), opened.size, 0)
    assert parsed["text"] == document["text"]
    assert base64.b64decode(parsed["file"].removeprefix("base64://")) == content
    assert base64.b64decode(parsed["again"]) == content


@pytest.mark.anyio
async def test_a_file_that_shrinks_while_sent(tmp_path: Path) -> None:
    path = tmp_path / "shrinks.bin"
    path.write_bytes(b"x" * 100)
    opened = open_file(path)
    try:
        os.truncate(path, 10)
        with pytest.raises(SendError, match="shrank"):
            await read_all(Body([FilePiece(opened, base64=False)]))
    finally:
        opened.close()
