"""What a handler sees of a request: method, decoded path and query, headers, a body.

The body is pulled from the connection only when a handler asks for it, so limits are
checked before reading and `Expect: 100-continue` is answered only then.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from astrlite.errors import NOT_JSON_OBJECT, ApiError, business
from astrlite.principal import Principal


class DeclaredTooLarge(Exception):
    """The body's framing already announces more than the limit (a chunk size)."""


class BodySource(Protocol):
    async def receive_chunk(self, limit: int) -> bytes | None:
        """The next piece of the body, or None at its end. Raises DeclaredTooLarge when
        the body announces more than ``limit`` bytes before they are read."""
        ...


def too_large(message_template: str, limit: int) -> ApiError:
    return ApiError(413, message_template.format(limit=limit), close=True)


BODY_TOO_LARGE = "Request body too large (limit {limit} bytes)"


class Request:
    __slots__ = (
        "_body",
        "auth_error",
        "content_length",
        "headers",
        "method",
        "params",
        "path",
        "principal",
        "query",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: tuple[tuple[str, str], ...],
        headers: list[tuple[bytes, bytes]],
        body: BodySource,
        content_length: int | None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.content_length = content_length
        self.principal: Principal | None = None
        # A WebSocket route's refused key, reported after the handshake (Route.websocket).
        self.auth_error: ApiError | None = None
        self.params: Mapping[str, str] = {}  # the route template's {name} segments
        self._body = body

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (name in lower case)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def query_value(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    async def stream(self, limit: int, message_template: str) -> AsyncIterator[bytes]:
        """Yield the body in pieces; 413 before reading when Content-Length says too much."""
        received = 0
        while (chunk := await self._piece(limit, message_template, received)) is not None:
            received += len(chunk)
            yield chunk

    async def read(self, limit: int, message_template: str = BODY_TOO_LARGE) -> bytes:
        # Not through stream(): an async generator per request costs more than the small
        # JSON body it reads, on the path of every POST.
        parts: list[bytes] = []
        received = 0
        while (chunk := await self._piece(limit, message_template, received)) is not None:
            received += len(chunk)
            parts.append(chunk)
        return b"".join(parts)

    async def _piece(self, limit: int, message_template: str, received: int) -> bytes | None:
        """The body's next piece after ``received`` bytes, None at its end; 413 when the
        body is, or declares itself, larger than ``limit``."""
        if received == 0 and self.content_length is not None and self.content_length > limit:
            raise too_large(message_template, limit)
        try:
            chunk = await self._body.receive_chunk(limit)
        except DeclaredTooLarge:
            raise too_large(message_template, limit) from None
        if chunk is not None and received + len(chunk) > limit:
            raise too_large(message_template, limit)
        return chunk

    async def json_object(self, limit: int) -> dict[str, Any]:
        """Parse the body as a JSON object (F2): anything else is one clear error."""
        raw = await self.read(limit)
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            # ValueError covers bad JSON, bad UTF-8 and ints over Python's digit limit.
            raise business(400, NOT_JSON_OBJECT) from None
        if not isinstance(value, dict):
            raise business(400, NOT_JSON_OBJECT)
        return value
