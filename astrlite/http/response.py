"""What a handler returns. A bytes body is sent with Content-Length in one write; an
async-iterable body is streamed (with Content-Length when known, chunked otherwise)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Any

from astrlite import envelope
from astrlite.errors import ApiError

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Response:
    status: int
    headers: Headers = field(default_factory=list)
    body: bytes | AsyncIterable[bytes] = b""
    content_length: int | None = None  # for streamed bodies; None means chunked
    close: bool = False  # close the connection after this response


def json_ok(data: Any = None, message: str | None = None) -> Response:
    body = envelope.ok(data, message)
    return Response(200, [(b"content-type", envelope.JSON_CONTENT_TYPE)], body)


def fixed_json_ok(data: Any) -> Callable[[], Response]:
    """For an answer that never changes while the server runs: encoded once."""
    body = envelope.ok(data)
    return lambda: Response(200, [(b"content-type", envelope.JSON_CONTENT_TYPE)], body)


def from_error(error: ApiError, *, http_errors: bool) -> Response:
    status = 200 if error.business and not http_errors else error.status
    headers = [(b"content-type", envelope.JSON_CONTENT_TYPE), *error.headers]
    return Response(status, headers, envelope.error(error.message), close=error.close)
