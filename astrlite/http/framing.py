"""What h11 leaves to its user at the edge (docs/compatibility.md H1-H4).

h11 parses a request head strictly, refuses a missing or repeated ``Host`` on HTTP/1.1
and conflicting ``Content-Length`` values. It accepts any ``HTTP/x.y`` version, any
``Host`` value, a body framed by both ``Content-Length`` and ``Transfer-Encoding``
(RFC 9112 §6.1: the latter wins) and chunk sizes it learns only as their bytes arrive.
`check_head` refuses the first three; `ChunkSizes` reads each chunk's declared size from
the bytes fed to h11, so a body that announces itself too large is refused before its
bytes are read.

A Content-Length body is read past h11 (`take_buffered`, `direct_body_room`,
`took_directly`): each byte h11 hands out is copied four times on the way (into its
buffer, twice out of it, and into bytes). Reading past it, in bigger reads, took a
quarter off an upload's CPU time (`python -m bench files`).

A response body is written past h11 too (`ServerConnection`, `chunk`, `sent_directly`):
h11 hands each piece through its state machine, and for a chunked response re-validates
every header twice while choosing the framing. h11 still chooses it, writes the head
and the end of the body, and keeps the connection's state; between the two, the body's
pieces change nothing in its state machine. Writing them past it took about a tenth
off the event loop's time per chat turn.

These touch h11 internals; h11 is pinned (pyproject.toml), and
tests/http/test_framing_direct.py and test_framing_responses.py fail loudly if they
change.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable

import h11
from h11._headers import Headers
from h11._readers import ContentLengthReader
from h11._writers import ChunkedWriter, ContentLengthWriter

from astrlite.errors import MALFORMED_REQUEST, VERSION_NOT_SUPPORTED, ApiError

# RFC 3986 §3.2.2: host = IP-literal / IPv4address / reg-name, then ":" *DIGIT. An IPv4
# address is a reg-name as far as its characters go; a bracketed literal is checked by
# `ipaddress` below (or is an IPvFuture).
_REG_NAME = rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"
_IP_LITERAL = rb"\[(?P<literal>[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]"
_HOST = re.compile(rb"(?:" + _IP_LITERAL + rb"|" + _REG_NAME + rb")(?::[0-9]*)?")

# 15 hex digits are 2**60 - 1 bytes: more than any body limit astrlite can be given, so a
# longer size is refused as it arrives, before an integer is ever made of it (RFC 9112
# §7.1: recipients must guard against overflowing chunk sizes).
MAX_CHUNK_SIZE_DIGITS = 15
SUPPORTED_VERSIONS = (b"1.0", b"1.1")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_ZERO = ord("0")


def direct_body_room(connection: h11.Connection) -> int:
    """How many bytes of the request body may be read from the socket and handed out
    without h11: what is left of a Content-Length body once h11 holds none of it (h11
    has answered NEED_DATA); 0 for a chunked body, which h11 must parse."""
    reader = connection._reader
    return reader._remaining if isinstance(reader, ContentLengthReader) else 0


def take_buffered(connection: h11.Connection) -> bytes | None:
    """What h11 already holds of a Content-Length request body, taken without its Data
    event (a small JSON body arrives with its head: this saves h11 a trip through its
    state machine); None when it holds none, or the body is chunked or over."""
    reader = connection._reader
    if not isinstance(reader, ContentLengthReader) or not reader._remaining:
        return None
    data = connection._receive_buffer.maybe_extract_at_most(reader._remaining)
    if data is None:
        return None
    reader._remaining -= len(data)
    return bytes(data)


def took_directly(connection: h11.Connection, count: int) -> None:
    """Tell h11 that `count` body bytes (at most `direct_body_room`) were read without it:
    its next event after the last of them is the body's EndOfMessage."""
    reader = connection._reader
    assert isinstance(reader, ContentLengthReader) and count <= reader._remaining
    reader._remaining -= count


# Added last to a response without a Content-Length for an HTTP/1.1 client, spelt as
# h11 adds it.
_CHUNKED = (b"Transfer-Encoding", b"transfer-encoding", b"chunked")
_FRAMING_NAMES = (b"content-length", b"transfer-encoding")


class ServerConnection(h11.Connection):
    """h11's server side, choosing a response's framing headers without re-validating
    the others in the common case: an HTTP/1.1 client that keeps the connection, a
    response with a body. The response's headers are h11's own `Headers` (built by
    `heads.response`, so already valid); every other case is h11's."""

    def __init__(self, max_incomplete_event_size: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)

    def _clean_up_response_headers_for_sending(self, response: h11.Response) -> h11.Response:
        if (
            self.their_http_version != b"1.1"
            or not self._cstate.keep_alive
            or self._request_method in (b"HEAD", b"CONNECT")
            or response.status_code in (204, 304)
        ):
            return super()._clean_up_response_headers_for_sending(response)
        items = response.headers._full_items
        if any(name in _FRAMING_NAMES for _, name, _ in items):
            return super()._clean_up_response_headers_for_sending(response)
        return h11.Response(
            headers=Headers([*items, _CHUNKED]),
            status_code=response.status_code,
            http_version=response.http_version,
            reason=response.reason,
            _parsed=True,
        )


def chunked_response(connection: h11.Connection) -> bool:
    """Whether the response whose head h11 has just sent is framed in chunks."""
    return type(connection._writer) is ChunkedWriter


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked response body (never empty: that would end the body)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def sent_directly(connection: h11.Connection, count: int) -> None:
    """Tell h11 that `count` bytes of a Content-Length response body were written
    without it: its EndOfMessage then checks the length as though it had sent them."""
    writer = connection._writer
    assert isinstance(writer, ContentLengthWriter) and count <= writer._length
    writer._length -= count


def check_head(event: h11.Request, headers: list[tuple[bytes, bytes]]) -> ApiError | None:
    """The error to answer (then close) for a head h11 accepted, or None when it is fine;
    `headers` are the event's, as a list."""
    if event.http_version not in SUPPORTED_VERSIONS:
        # Only what we implement: an unknown version's framing rules are unknown too
        # (docs/compatibility.md H2).
        return ApiError(505, VERSION_NOT_SUPPORTED)
    if not _hosts_valid(value for name, value in headers if name == b"host"):
        return ApiError(400, MALFORMED_REQUEST)
    names = {name for name, _ in headers}
    if b"transfer-encoding" in names and (
        b"content-length" in names or event.http_version == b"1.0"
    ):
        # RFC 9112 §6.1: either may be a smuggling attempt; §6.3 says such framing can
        # not be trusted, so nothing after this head on the connection is either.
        return ApiError(400, MALFORMED_REQUEST)
    return None


def _hosts_valid(values: Iterable[bytes]) -> bool:
    # h11 has already refused a repeated Host, and a missing one on HTTP/1.1.
    for value in values:
        match = _HOST.fullmatch(value)
        if match is None:
            return False
        literal = match.group("literal")
        if literal is not None and not literal.startswith(b"v"):
            try:
                ipaddress.IPv6Address(literal.decode("ascii"))
            except ValueError:
                return False
    return True


class _At(enum.Enum):
    SIZE = enum.auto()  # the hex digits of a chunk size
    LINE = enum.auto()  # the rest of that line: extensions, CRLF
    SKIP = enum.auto()  # a chunk's data and its CRLF
    DONE = enum.auto()  # after the last chunk: trailers, which h11 reads


class ChunkSizes:
    """Follows the chunked framing of a request body through the bytes given to h11.

    Only the sizes are read; h11 still validates everything else, so malformed framing
    is reported by h11. `declared` is the sum of the sizes announced so far, including
    the chunk whose bytes have not arrived yet.
    """

    __slots__ = ("_at", "_digits", "_skip", "declared", "overflow")

    def __init__(self) -> None:
        self.declared = 0
        self.overflow = False  # a size with more than MAX_CHUNK_SIZE_DIGITS digits
        self._at = _At.SIZE
        self._digits = bytearray()
        self._skip = 0

    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end and self._at is not _At.DONE and not self.overflow:
            if self._at is _At.SKIP:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                if not self._skip:
                    self._at = _At.SIZE
            elif self._at is _At.SIZE:
                while pos < end and not self._digits and data[pos] == _ZERO:
                    pos += 1  # leading zeros: the size is its value, not its length
                start = pos
                room = MAX_CHUNK_SIZE_DIGITS + 1 - len(self._digits)
                while pos < end and pos - start < room and data[pos] in _HEX_DIGITS:
                    pos += 1
                self._digits += data[start:pos]
                if len(self._digits) > MAX_CHUNK_SIZE_DIGITS:
                    self.overflow = True
                elif pos < end:
                    self._at = _At.LINE
            else:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    return
                pos = newline + 1
                self._end_of_size_line()

    def _end_of_size_line(self) -> None:
        size = int(self._digits, 16) if self._digits else 0
        self._digits.clear()
        self.declared += size
        if size:
            self._skip = size + 2
            self._at = _At.SKIP
        else:
            self._at = _At.DONE
