from __future__ import annotations

import random
import time

import pytest

from astrlite.files.filenames import sanitize_filename
from astrlite.files.multipart import (
    DEFAULT_MAX_PART_HEADER_BYTES,
    MAX_TRANSPORT_PADDING,
    Event,
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    parse_boundary,
)

BOUNDARY = "xYzZY"
DELIMITER = b"\r\n--" + BOUNDARY.encode()


def file_part(name: str, filename: bytes, data: bytes, content_type: bytes = b"") -> bytes:
    head = b'Content-Disposition: form-data; name="' + name.encode() + b'"; filename="'
    head += filename + b'"\r\n'
    if content_type:
        head += b"Content-Type: " + content_type + b"\r\n"
    return head + b"\r\n" + data


def field_part(name: str, value: bytes) -> bytes:
    return b'Content-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n' + value


def make_body(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"\r\n") -> bytes:
    start = preamble + b"\r\n" if preamble else b""
    middle = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return start + middle + b"--" + BOUNDARY.encode() + b"--" + epilogue


def run(chunks: list[bytes], parser: MultipartParser | None = None) -> list[Event]:
    parser = parser or MultipartParser(BOUNDARY)
    events: list[Event] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.close()
    return events


def collect(events: list[Event]) -> list[tuple[PartStart, bytes]]:
    """Merge data events per part, checking the PartStart, PartData*, PartEnd grammar."""
    parts: list[tuple[PartStart, bytes]] = []
    current: PartStart | None = None
    data = b""
    for event in events:
        if isinstance(event, PartStart):
            assert current is None
            current, data = event, b""
        elif isinstance(event, PartData):
            assert current is not None and event.data
            data += event.data
        else:
            assert current is not None
            parts.append((current, data))
            current = None
    assert current is None
    return parts


def parse(body: bytes, chunk_size: int | None = None) -> list[tuple[PartStart, bytes]]:
    size = chunk_size or max(len(body), 1)
    return collect(run([body[i : i + size] for i in range(0, len(body), size)]))


def summary(parts: list[tuple[PartStart, bytes]]) -> list[tuple[str, str | None, bytes]]:
    return [(start.name, start.filename, data) for start, data in parts]


TRICKY_BODY = make_body(
    field_part("text", b"hello"),
    file_part(
        "file", b"a.txt", b"line1\r\n--xYzZ\r\n--xYzZYq\r\n--xYzZY \tx\r\n\r\n-", b"text/plain"
    ),
    file_part("empty", b"e.bin", b""),
    field_part("last", b"\r\n"),
    preamble=b"This is the preamble. --xYzZY is not at a line start.",
    epilogue=b"\r\nepilogue --xYzZY\r\n",
)
TRICKY_EXPECTED = [
    ("text", None, b"hello"),
    ("file", "a.txt", b"line1\r\n--xYzZ\r\n--xYzZYq\r\n--xYzZY \tx\r\n\r\n-"),
    ("empty", "e.bin", b""),
    ("last", None, b"\r\n"),
]


def test_whole_body() -> None:
    parts = parse(TRICKY_BODY)
    assert summary(parts) == TRICKY_EXPECTED
    assert parts[1][0].content_type == "text/plain"
    assert parts[0][0].content_type is None


def test_every_split_in_two() -> None:
    for split in range(len(TRICKY_BODY) + 1):
        events = run([TRICKY_BODY[:split], TRICKY_BODY[split:]])
        assert summary(collect(events)) == TRICKY_EXPECTED, split


def test_byte_by_byte() -> None:
    assert summary(parse(TRICKY_BODY, chunk_size=1)) == TRICKY_EXPECTED


@pytest.mark.parametrize("chunk_size", [2, 3, 5, 7, 11, 64])
def test_small_chunks(chunk_size: int) -> None:
    assert summary(parse(TRICKY_BODY, chunk_size=chunk_size)) == TRICKY_EXPECTED


@pytest.mark.parametrize(
    "data",
    [
        b"\r\n--xYzZ",  # a delimiter prefix, then the part ends
        b"abc\r\n--xYzZ",
        b"\r\n--xYzZYX",  # the whole delimiter, not followed by CRLF or "--"
        b"\r\n--xYzZY-x",
        b"\r\n--xYzZY  \r",
        b"\r\r\n\r\n-",
        b"\r",
        b"-",
    ],
)
def test_delimiter_lookalikes_are_data(data: bytes) -> None:
    body = make_body(file_part("file", b"f", data))
    for size in (1, 2, len(body)):
        assert summary(parse(body, size)) == [("file", "f", data)]


def test_transport_padding_after_boundaries() -> None:
    body = b"--xYzZY \t \r\n" + field_part("a", b"1") + b"\r\n--xYzZY\t\r\n"
    body += field_part("b", b"2") + b"\r\n--xYzZY--  \r\n"
    assert summary(parse(body)) == [("a", None, b"1"), ("b", None, b"2")]


def test_padding_over_the_limit_is_data() -> None:
    data = b"\r\n--xYzZY" + b" " * (MAX_TRANSPORT_PADDING + 1) + b"\r\nmore"
    body = make_body(file_part("file", b"f", data))
    assert summary(parse(body)) == [("file", "f", data)]
    assert summary(parse(body, 1)) == [("file", "f", data)]


def test_close_without_trailing_crlf_and_with_epilogue() -> None:
    for epilogue in (b"", b"\r\n", b"garbage\r\n--xYzZY\r\nContent-Disposition: x\r\n\r\n"):
        body = make_body(field_part("a", b"1"), epilogue=epilogue)
        assert summary(parse(body)) == [("a", None, b"1")]


def test_no_parts() -> None:
    assert run([b"--xYzZY--\r\n"]) == []


def test_feeding_after_the_end_is_ignored() -> None:
    parser = MultipartParser(BOUNDARY)
    parser.feed(make_body(field_part("a", b"1")))
    assert parser.feed(DELIMITER + b"\r\n" + field_part("b", b"2")) == []
    assert parser.close() == []
    assert parser.buffered == 0


def test_headers() -> None:
    part = (
        b"content-disposition: form-data; name=upload; filename=plain.bin\r\n"
        b"X-Folded: one\r\n two\r\n"
        b"Content-Type:  application/x-thing ; a=1 \r\n\r\nDATA"
    )
    [(start, data)] = parse(make_body(part))
    assert (start.name, start.filename, data) == ("upload", "plain.bin", b"DATA")
    assert start.content_type == "application/x-thing ; a=1"
    assert start.headers == (
        ("content-disposition", "form-data; name=upload; filename=plain.bin"),
        ("x-folded", "one two"),
        ("content-type", "application/x-thing ; a=1"),
    )


@pytest.mark.parametrize(
    ("disposition", "name", "filename"),
    [
        (b'form-data; name="file"; filename="a.txt"', "file", "a.txt"),
        (b"form-data; name=file; filename=a.txt", "file", "a.txt"),
        (b'form-data;name="a;b";filename="x; y.txt"', "a;b", "x; y.txt"),
        (b'form-data; name="q\\"uote"; filename="back\\\\slash"', 'q"uote', "back\\slash"),
        (b'form-data; NAME="n"; FileName="up.txt"', "n", "up.txt"),
        (b'form-data; name="n"; filename=""', "n", ""),
        (b'form-data; name="n"; filename="unterminated', "n", "unterminated"),
        (b'form-data; name="n"; filename="C:\\Users\\me\\a.txt"', "n", "C:\\Users\\me\\a.txt"),
        (b"form-data; name=\"n\"; filename*=UTF-8''%E4%BD%A0.txt", "n", "你.txt"),
        (
            b'form-data; name="n"; filename="fallback.txt"; filename*=utf-8\'\'%E2%82%AC.txt',
            "n",
            "€.txt",
        ),
        (b"form-data; name=\"n\"; filename*=iso-8859-1'en'%E9.txt", "n", "é.txt"),
        (b'form-data; name="n"; filename="ok.txt"; filename*=UTF-8\'\'%FF.txt', "n", "ok.txt"),
        (b'form-data; name="n"; filename="ok.txt"; filename*=koi8-r\'\'%C1.txt', "n", "ok.txt"),
        (b'form-data; name="n"; filename="ok.txt"; filename*=no-quotes', "n", "ok.txt"),
        (b'form-data; name="n"; filename="\xe4\xbd\xa0\xe5\xa5\xbd.txt"', "n", "你好.txt"),
        (b'form-data; name="n"; filename="\xe9t\xe9.txt"', "n", "été.txt"),  # latin-1
        (b'form-data; name="first"; name="second"', "first", None),
    ],
)
def test_content_disposition(disposition: bytes, name: str, filename: str | None) -> None:
    part = b"Content-Disposition: " + disposition + b"\r\n\r\nx"
    [(start, _)] = parse(make_body(part))
    assert (start.name, start.filename) == (name, filename)


@pytest.mark.parametrize(
    ("raw", "sent", "kept"),
    [
        (b"../../x", "../../x", "x"),
        (b"/etc/passwd", "/etc/passwd", "passwd"),
        (b"C:\\x", "C:\\x", "x"),
        (b"a\x00b", "a\x00b", "ab"),
        (b"..", "..", "file"),
        (b"\xff\xfe.txt", "ÿþ.txt", "ÿþ.txt"),
        (b"a" * 300 + b".txt", "a" * 300 + ".txt", "a" * 251 + ".txt"),
    ],
)
def test_hostile_file_names(raw: bytes, sent: str, kept: str) -> None:
    [(start, _)] = parse(make_body(file_part("file", raw, b"x")))
    assert start.filename == sent
    assert sanitize_filename(start.filename) == kept


def test_file_part_without_filename_is_a_field() -> None:
    [(start, data)] = parse(make_body(field_part("file", b"not a file")))
    assert (start.name, start.filename, data) == ("file", None, b"not a file")


def test_empty_file_part() -> None:
    events = run([make_body(file_part("file", b"empty.txt", b""))])
    assert [type(event) for event in events] == [PartStart, PartEnd]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "boundary not found in body"),
        (b'{"json": true}', "boundary not found in body"),
        (make_body(field_part("a", b"1")).replace(b"xYzZY", b"other"), "boundary not found"),
        (b"--xYzZY\r\n" + field_part("a", b"1"), "body ended before the closing boundary"),
        (b"--xYzZY\r\nContent-Disposition: form-data; name=a\r\n", "ended before the closing"),
        (b"--xYzZY\r\n", "body ended before the closing boundary"),
        (b"--xYzZY", "boundary not found in body"),  # a boundary line needs its CRLF
        (make_body(b"Content-Type: text/plain\r\n\r\nx"), "part has no Content-Disposition header"),
        (make_body(b"\r\nx"), "part has no Content-Disposition header"),
        (make_body(b"Content-Disposition: form-data\r\n\r\nx"), "part has no name"),
        (make_body(b'Content-Disposition: form-data; filename="a"\r\n\r\nx'), "part has no name"),
        (make_body(b"no colon here\r\n\r\nx"), "invalid part header line"),
        (make_body(b": no name\r\n\r\nx"), "invalid part header line"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    for size in (1, max(len(body), 1)):
        with pytest.raises(MultipartError, match=message):
            parse(body, size)


def test_part_headers_at_and_over_the_limit() -> None:
    limit = 100
    disposition = b'Content-Disposition: form-data; name="a"\r\n'

    def part(header_bytes: int) -> bytes:
        padding = header_bytes - len(disposition) - len(b"X: \r\n\r\n")
        return disposition + b"X: " + b"p" * padding + b"\r\n\r\ndata"

    for size in (1, 7, 1000):
        ok = make_body(part(limit))
        parser = MultipartParser(BOUNDARY, max_part_header_bytes=limit)
        assert summary(collect(run(_chunks(ok, size), parser))) == [("a", None, b"data")]
        too_big = make_body(part(limit + 1))
        parser = MultipartParser(BOUNDARY, max_part_header_bytes=limit)
        with pytest.raises(MultipartError, match=r"part headers too large \(limit 100 bytes\)"):
            run(_chunks(too_big, size), parser)


def test_endless_part_headers_stay_bounded() -> None:
    parser = MultipartParser(BOUNDARY)
    parser.feed(b"--xYzZY\r\n")
    with pytest.raises(MultipartError, match="part headers too large"):
        for _ in range(100):
            parser.feed(b"X" * 1000)
            assert parser.buffered < DEFAULT_MAX_PART_HEADER_BYTES


def test_too_many_parts() -> None:
    body = make_body(*[field_part("f", b"") for _ in range(10_000)])
    with pytest.raises(MultipartError, match=r"too many parts \(limit 1000\)"):
        parse(body)


def test_parts_up_to_the_limit() -> None:
    body = make_body(*[field_part("f", b"v") for _ in range(5)])
    assert len(collect(run([body], MultipartParser(BOUNDARY, max_parts=5)))) == 5
    with pytest.raises(MultipartError, match=r"too many parts \(limit 4\)"):
        run([body], MultipartParser(BOUNDARY, max_parts=4))


def test_memory_stays_bounded_for_a_large_part() -> None:
    chunk_size = 256 * 1024
    total = 64 * 1024 * 1024
    # Every chunk ends with a delimiter prefix, so the parser must hold something back.
    chunk = (
        bytes(range(256)) * (chunk_size // 256 - 1)
        + b"\x00" * (257 - len(DELIMITER))
        + DELIMITER[:-1]
    )
    assert len(chunk) == chunk_size
    bound = len(DELIMITER) + MAX_TRANSPORT_PADDING + 2
    parser = MultipartParser(BOUNDARY)
    parser.feed(b"--xYzZY\r\n" + file_part("file", b"big.bin", b""))
    received = 0
    for _ in range(total // chunk_size):
        for event in parser.feed(chunk):
            assert isinstance(event, PartData)
            received += len(event.data)
        assert parser.buffered <= bound
    events = parser.feed(b"\r\n--xYzZY--")
    received += sum(len(event.data) for event in events if isinstance(event, PartData))
    assert parser.close() == []
    assert received == total
    assert isinstance(events[-1], PartEnd)


def test_memory_stays_bounded_in_a_long_preamble() -> None:
    parser = MultipartParser(BOUNDARY)
    for _ in range(1000):
        assert parser.feed(b"no boundary here \r\n--xYzZ") == []
        assert parser.buffered <= len(DELIMITER)


def test_a_whole_feed_is_passed_on_without_a_copy() -> None:
    parser = MultipartParser(BOUNDARY)
    parser.feed(b"--xYzZY\r\n" + field_part("a", b""))
    chunk = b"z" * 4096
    [event] = parser.feed(chunk)
    assert isinstance(event, PartData) and event.data is chunk


@pytest.mark.parametrize(
    ("header", "boundary"),
    [
        ("multipart/form-data; boundary=xYzZY", "xYzZY"),
        ('Multipart/Form-Data; charset=utf-8; BOUNDARY="a b:c"', "a b:c"),
        ("multipart/form-data;boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", None),
        ("multipart/form-data; boundary=" + "b" * 70, None),
    ],
)
def test_parse_boundary(header: str, boundary: str | None) -> None:
    assert parse_boundary(header) == (boundary or header.rpartition("=")[2])


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("application/json", "Content-Type is not multipart/form-data"),
        ("multipart/mixed; boundary=x", "Content-Type is not multipart/form-data"),
        ("", "Content-Type is not multipart/form-data"),
        ("multipart/form-data", "no boundary in Content-Type"),
        ("multipart/form-data; charset=utf-8", "no boundary in Content-Type"),
        ('multipart/form-data; boundary=""', "empty boundary"),
        ("multipart/form-data; boundary=" + "b" * 71, "boundary longer than 70 characters"),
        ("multipart/form-data; boundary=caf\u00e9", "printable ASCII"),
    ],
)
def test_parse_boundary_errors(header: str, message: str) -> None:
    with pytest.raises(MultipartError, match=message):
        parse_boundary(header)


def _chunks(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def outcome(chunks: list[bytes]) -> object:
    try:
        return summary(collect(run(chunks)))
    except MultipartError as error:
        return str(error)


def test_random_bodies_parse_the_same_in_any_chunking() -> None:
    rng = random.Random(7578)
    pieces = [b"\r\n", b"\r", b"\n", b"-", b"--", b"xYzZY", b"xYz", b" ", b"\t", b"a", DELIMITER]
    for _ in range(500):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(30)))
        body = make_body(file_part("f", b"n", data), field_part("g", data))
        whole = outcome([body])
        if DELIMITER not in b"\r\n" + data:
            assert whole == [("f", "n", data), ("g", None, data)]
        cuts = sorted(rng.sample(range(len(body)), 5))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        assert outcome(chunks) == whole, body


def test_long_runs_of_separators_parse_in_linear_time() -> None:
    hostile = [b" " * 8000, b";" * 8000, b"; " * 4000, b'name="' + b" " * 8000]
    started = time.perf_counter()
    for run_of_separators in hostile * 10:
        part = b"Content-Disposition: form-data; name=a;" + run_of_separators + b"\r\n\r\nx"
        parser = MultipartParser(BOUNDARY, max_part_header_bytes=9000)
        [(start, data)] = collect(run([make_body(part)], parser))
        assert (start.name, data) == ("a", b"x")
    assert time.perf_counter() - started < 1  # quadratic scanning took over 10 s


def test_empty_content_type_is_none() -> None:
    [(start, _)] = parse(
        make_body(b"Content-Disposition: form-data; name=a\r\nContent-Type:\r\n\r\n")
    )
    assert start.content_type is None
