"""The head checks and the chunk-size reader, as plain functions (docs/compatibility.md
H1-H4)."""

from __future__ import annotations

import h11
import pytest

from astrlite.http.framing import MAX_CHUNK_SIZE_DIGITS, ChunkSizes, check_head


def head(version: bytes = b"1.1", *headers: tuple[bytes, bytes]) -> h11.Request:
    connection = h11.Connection(h11.SERVER)
    lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    connection.receive_data(b"POST / HTTP/" + version + b"\r\n" + lines + b"\r\n")
    event = connection.next_event()
    assert isinstance(event, h11.Request)
    return event


HOST = (b"host", b"example.com")


def status(event: h11.Request) -> int | None:
    error = check_head(event, list(event.headers))
    return None if error is None else error.status


@pytest.mark.parametrize(
    ("version", "expected"),
    [(b"1.1", None), (b"1.0", None), (b"1.9", 505), (b"2.0", 505), (b"0.9", 505), (b"9.9", 505)],
)
def test_versions(version: bytes, expected: int | None) -> None:
    assert status(head(version, HOST)) == expected


def test_both_framings_or_chunked_on_http_1_0_are_refused() -> None:
    chunked = (b"transfer-encoding", b"chunked")
    assert status(head(b"1.1", HOST, chunked)) is None
    assert status(head(b"1.1", HOST, (b"content-length", b"5"))) is None
    assert status(head(b"1.1", HOST, (b"content-length", b"5"), chunked)) == 400
    assert status(head(b"1.1", HOST, chunked, (b"content-length", b"5"))) == 400
    assert status(head(b"1.0", chunked)) == 400


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (b"example.com", True),
        (b"example.com:", True),
        (b"", True),
        (b"[::ffff:127.0.0.1]:1", True),
        (b"[v7.anything:goes]", True),
        (b"%7e", True),
        (b"[127.0.0.1]", False),
        (b"[::1]]", False),
        (b"%7", False),
        (b"a b", False),
        (b"a,b", True),  # sub-delims are allowed in a reg-name
        (b"\xc3\xa9.example", False),
    ],
)
def test_host_values(value: bytes, valid: bool) -> None:
    assert (status(head(b"1.1", (b"host", value))) is None) is valid


def sizes_of(data: bytes, *, split: int | None = None) -> ChunkSizes:
    sizes = ChunkSizes()
    if split is None:
        sizes.feed(data)
    else:
        for start in range(0, len(data), split):
            sizes.feed(data[start : start + split])
    return sizes


BODY = b"5;ext=1\r\nhello\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\nTrailer: 1\r\n\r\nGET / HTTP/1.1\r\n"


@pytest.mark.parametrize("split", [None, 1, 2, 3, 7])
def test_sizes_are_read_however_the_bytes_are_split(split: int | None) -> None:
    sizes = sizes_of(BODY, split=split)
    assert (sizes.declared, sizes.overflow) == (5 + 16, False)


def test_a_size_counts_as_soon_as_its_line_ends() -> None:
    sizes = sizes_of(b"5\r\nhel")
    assert sizes.declared == 5
    sizes.feed(b"lo\r\n400")
    assert sizes.declared == 5  # the next line has not ended yet
    sizes.feed(b"\r\n")
    assert sizes.declared == 5 + 0x400


def test_overflow_is_seen_before_the_line_ends() -> None:
    sizes = sizes_of(b"f" * (MAX_CHUNK_SIZE_DIGITS + 1))
    assert sizes.overflow
    assert not sizes_of(b"f" * MAX_CHUNK_SIZE_DIGITS).overflow


def test_leading_zeros_do_not_count_as_digits() -> None:
    sizes = sizes_of(b"0" * 40 + b"8\r\n")
    assert (sizes.declared, sizes.overflow) == (8, False)


def test_nothing_after_the_last_chunk_is_read() -> None:
    sizes = sizes_of(b"0\r\nffffffffffffffffffff\r\n")
    assert (sizes.declared, sizes.overflow) == (0, False)
