"""What a handler returns. A bytes body is sent with Content-Length in one write; an
async-iterable body is streamed (with Content-Length when known, chunked otherwise); a
FileBody is handed to the kernel (sendfile)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from astrlite import envelope
from astrlite.compat import SEED, Envelope
from astrlite.errors import ApiError, Invalid

if TYPE_CHECKING:
    from astrlite.http.websocket_channel import WebSocketSession

Headers = list[tuple[bytes, bytes]]


class FileBody(Protocol):
    """A body that is a slice of an open file. The connection sends it with sendfile (no
    copy through Python) instead of iterating it, then closes it like any streamed body.
    """

    def file_slice(self) -> tuple[int, int, int]:
        """(file descriptor, offset, length) of the bytes to send."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Response:
    status: int
    headers: Headers = field(default_factory=list)
    body: bytes | AsyncIterable[bytes] | FileBody = b""
    content_length: int | None = None  # for streamed bodies; None means chunked
    close: bool = False  # close the connection after this response
    websocket: WebSocketSession | None = None  # a 101: what then runs on the socket


def json_ok(data: Any, style: Envelope = SEED.envelope, *, message: str | None = None) -> Response:
    """A success envelope; handlers pass the running profile's ``Profile.envelope``
    (tests/architecture checks that every handler does). ``message`` is AstrBot's
    occasional success text (``保存成功~``); null otherwise."""
    body = style.ok(data, message)
    return Response(200, [(b"content-type", envelope.JSON_CONTENT_TYPE)], body)


def fixed_json_ok(data: Any, style: Envelope = SEED.envelope) -> Callable[[], Response]:
    """For an answer that never changes while the server runs: encoded once."""
    body = style.ok(data)
    return lambda: Response(200, [(b"content-type", envelope.JSON_CONTENT_TYPE)], body)


def from_error(error: ApiError, *, http_errors: bool, style: Envelope) -> Response:
    status = 200 if error.business and not http_errors else error.status
    headers = [(b"content-type", envelope.JSON_CONTENT_TYPE), *error.headers]
    if isinstance(error, Invalid):  # FastAPI's body: compact, raw UTF-8, no envelope
        text = json.dumps({"detail": error.detail}, separators=(",", ":"), ensure_ascii=False)
        return Response(status, headers, text.encode("utf-8", "backslashreplace"))
    return Response(status, headers, style.error(error.message), close=error.close)
