"""The one error type handlers raise; the app turns it into a response in one place."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered with the JSON envelope.

    `status` is the honest HTTP status. A business error (an endpoint's error string) is
    sent as HTTP 200 unless the server runs with --http-errors, as AstrBot clients expect;
    every other error always uses its real status. `close` asks the connection layer to
    close after answering (the request body was not read to its end).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        business: bool = False,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.business = business
        self.headers = headers
        self.close = close


class PeerGone(Exception):
    """The client went away, or stopped reading for longer than the write deadline.
    Raised through handlers to the connection layer, which just closes."""


def business(status: int, message: str) -> ApiError:
    """An endpoint's error string: HTTP 200 by default, `status` with --http-errors."""
    return ApiError(status, message, business=True)


MALFORMED_REQUEST = "Malformed HTTP request"
MALFORMED_TARGET = "Malformed request target"
TARGET_TOO_LONG = "Request target too long"
VERSION_NOT_SUPPORTED = "HTTP version not supported"
REQUEST_TIMED_OUT = "Request timed out"
HEADERS_TOO_LARGE = "Request headers too large"
SERVER_BUSY = "Server busy, try again later"
INTERNAL_ERROR = "Internal server error"
NOT_JSON_OBJECT = "Request body must be a JSON object"
# Both /chat and /im/message refuse a message without content in these words
# (docs/compatibility.md M3).
EMPTY_CONTENT = "Message content is empty (reply only is not allowed)"


class Invalid(ApiError):
    """A request body that fails validation under the 4.27 profile: 422 with FastAPI's
    ``{"detail": [...]}`` body (outside the envelope), each item ``type, loc, msg,
    input`` (+ ``ctx``) as observed (docs/compatibility.md P4)."""

    def __init__(self, detail: list[dict[str, object]]) -> None:
        super().__init__(422, "Request validation failed")
        self.detail = detail
