"""File bodies leave through sendfile() on a real socket, framed by h11 (Content-Length or
chunked) exactly as an iterated body would be; independent client: httpx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from astrlite.files.attachments import FileRange, OpenedFile
from astrlite.http import rawsocket
from astrlite.http.request import Request
from astrlite.http.response import Response
from astrlite.http.router import Route
from tests.support.server import TEST_KEY, running_server

SIZE = 3 * 1024 * 1024 + 17  # more than one sendfile() call's worth on a small buffer


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes each sendfile() call sent (the real call, counted)."""
    calls: list[int] = []
    real = rawsocket.RawSocketStream.try_sendfile

    def counted(self: rawsocket.RawSocketStream, fd: int, offset: int, count: int) -> int | None:
        done = real(self, fd, offset, count)
        calls.append(done or 0)
        return done

    monkeypatch.setattr(rawsocket.RawSocketStream, "try_sendfile", counted)
    return calls


@pytest.fixture
def content(tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    data = os.urandom(SIZE)
    path = tmp_path / "span.bin"
    path.write_bytes(data)
    yield path, data


def span_route(path: Path, start: int, length: int, content_length: bool) -> Route:
    async def handle(request: Request) -> Response:
        file = path.open("rb")
        opened = OpenedFile(file, SIZE, 0.0)
        known = length if content_length else None
        return Response(200, [], FileRange(opened, start, length), content_length=known)

    return Route(handle, public=True)


def test_download_and_range_use_sendfile(sent: list[int]) -> None:
    data = os.urandom(SIZE)
    with running_server() as srv:
        answer = httpx.post(
            srv.url + "/api/v1/file",
            files={"file": ("big.bin", data, "application/octet-stream")},
            headers={"X-API-Key": TEST_KEY},
        ).json()
        url = f"{srv.url}/api/v1/file?attachment_id={answer['data']['attachment_id']}"
        whole = httpx.get(url, headers={"X-API-Key": TEST_KEY})
        assert whole.content == data
        assert sum(sent) == SIZE
        part = httpx.get(url, headers={"X-API-Key": TEST_KEY, "Range": "bytes=1000-600000"})
        assert part.status_code == 206
        assert part.content == data[1000:600001]
        assert sum(sent) == SIZE + 599_001


@pytest.mark.parametrize("content_length", [True, False])
def test_file_span_framing(
    sent: list[int], content: tuple[Path, bytes], content_length: bool
) -> None:
    path, data = content
    routes = {"/span": {"GET": span_route(path, 5, SIZE - 10, content_length)}}
    with running_server(extra_routes=routes) as srv, httpx.Client() as client:
        for _ in range(2):  # and the connection stays usable after it
            response = client.get(f"{srv.url}/span")
            assert response.content == data[5:-5]
            framing = "content-length" if content_length else "transfer-encoding"
            assert framing in response.headers
    assert sum(sent) == 2 * (SIZE - 10)


def test_a_file_that_shrank_ends_the_connection(
    sent: list[int], content: tuple[Path, bytes]
) -> None:
    path, _ = content
    routes = {"/span": {"GET": span_route(path, 0, SIZE + 100, True)}}
    with running_server(extra_routes=routes) as srv, pytest.raises(httpx.HTTPError):
        httpx.get(f"{srv.url}/span")
    assert sum(sent) == SIZE
