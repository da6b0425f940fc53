"""POST and GET /api/v1/file over real sockets (docs/compatibility.md M10;
F8-F11, F14, F16): uploads with httpx, curl and raw bytes, ranged and conditional downloads,
every bad input of issue 4, and crash safety (client gone, server SIGKILLed)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import TEST_KEY, Running, running_server
from tests.support.wire import WireClient, body_of, read_until_close, status_of

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 1024 * 1024
BOUNDARY = "astrliteTestBoundary"
AUTH = {"X-API-Key": TEST_KEY}
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(64)
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64)
HTML = b"<html><script>alert(document.cookie)</script></html>"
TOO_LARGE = f"File too large (limit {LIMIT} bytes)"
OCTET = "application/octet-stream"


@pytest.fixture(scope="module")
def srv() -> Iterator[Running]:
    with running_server(max_upload_bytes=LIMIT, body_timeout=0.5) as running:
        yield running


# -- helpers ---------------------------------------------------------------------------


def part(
    content: bytes,
    *,
    name: bytes = b"file",
    filename: bytes | None = b"a.txt",
    content_type: bytes | None = b"text/plain",
) -> bytes:
    disposition = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    headers = disposition + (b"\r\nContent-Type: " + content_type if content_type else b"")
    return headers + b"\r\n\r\n" + content


def form(*parts: bytes, boundary: str = BOUNDARY) -> bytes:
    delimiter = b"--" + boundary.encode()
    body = b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts)
    return body + delimiter + b"--\r\n"


def post_form(
    srv: Running, body: bytes, *, key: str = TEST_KEY, content_type: str | None = None
) -> httpx.Response:
    headers = {
        "X-API-Key": key,
        "Content-Type": content_type or f"multipart/form-data; boundary={BOUNDARY}",
    }
    return httpx.post(srv.url + "/api/v1/file", content=body, headers=headers, timeout=10)


def upload(
    srv: Running,
    content: bytes,
    filename: str = "a.txt",
    content_type: str = "text/plain",
    key: str = TEST_KEY,
) -> dict[str, Any]:
    response = httpx.post(
        srv.url + "/api/v1/file",
        files={"file": (filename, content, content_type)},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    assert answer["status"] == "ok", answer
    data: dict[str, Any] = answer["data"]
    return data


def download(
    srv: Running, attachment_id: str, key: str = TEST_KEY, **headers: str
) -> httpx.Response:
    return httpx.get(
        srv.url + "/api/v1/file",
        params={"attachment_id": attachment_id},
        headers={"X-API-Key": key, **{k.replace("_", "-"): v for k, v in headers.items()}},
    )


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "error" and answer["data"] is None
    message: str = answer["message"]
    return message


def rows(data_dir: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(data_dir / "astrlite.db") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM attachments ORDER BY created_at").fetchall()


def row_of(srv: Running, attachment_id: str) -> sqlite3.Row:
    return next(r for r in rows(srv.data_dir) if r["attachment_id"] == attachment_id)


def incoming(data_dir: Path) -> list[Path]:
    return list((data_dir / "attachments" / ".incoming").iterdir())


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def raw_request(srv: Running, head: bytes, body: bytes = b"") -> bytes:
    with srv.connect() as sock:
        sock.sendall(head + body)
        return read_until_close(sock)


def upload_head(length: int | None, *extra: bytes) -> bytes:
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    lines = [
        b"POST /api/v1/file HTTP/1.1",
        b"Host: x",
        b"X-API-Key: " + TEST_KEY.encode(),
        b"Content-Type: multipart/form-data; boundary=" + BOUNDARY.encode(),
        framing,
        *extra,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


# -- uploads that work -----------------------------------------------------------------


def test_upload_answer_row_and_file_on_disk(srv: Running) -> None:
    content = b"hello, attachments\n"
    data = upload(srv, content, "notes.txt")
    assert list(data) == ["attachment_id", "filename", "type", "size", "mime_type"]
    assert data["filename"] == "notes.txt"
    assert (data["type"], data["size"], data["mime_type"]) == ("file", len(content), "text/plain")
    row = row_of(srv, data["attachment_id"])
    assert row["owner_key_id"] == "static:1"
    assert row["original_name"] == "notes.txt"
    assert row["sha256"] == hashlib.sha256(content).hexdigest()
    assert re.fullmatch(r"attachments/\d{4}/\d{2}/\d{2}/[0-9a-f]{32}\.txt", row["path"])
    assert (srv.data_dir / row["path"]).read_bytes() == content
    assert incoming(srv.data_dir) == []


@pytest.mark.parametrize(
    ("content", "filename", "declared", "kind", "mime_type"),
    [
        (PNG, "p.png", "text/plain", "image", "image/png"),
        (MP3, "a.mp3", "application/octet-stream", "record", "audio/mpeg"),
        (MP4, "v.mp4", "video/mp4", "video", "video/mp4"),
        (PNG, "noext", "", "image", "image/png"),
        (HTML, "x.png", "image/png", "file", "application/octet-stream"),
        (b"<svg onload=alert(1)/>", "x.svg", "image/svg+xml", "file", "application/octet-stream"),
        (
            b"\xef\xbb\xbf <?xml version='1.0'?>",
            "x.xml",
            "text/xml",
            "file",
            "application/octet-stream",
        ),
        # A script has no leading "<": its declared type or its name decides (F9).
        (b"alert(document.cookie)\n", "a.txt", "application/javascript", "file", OCTET),
        (b"alert(document.cookie)\n", "notes", "text/javascript", "file", OCTET),
        (b"alert(document.cookie)\n", "run.js", "text/plain", "file", OCTET),
        (b"just words\n", "page.html", "text/plain", "file", OCTET),
        (b"just words\n", "notes", "text/html; charset=utf-8", "file", OCTET),
    ],
)
def test_types_are_sniffed_and_active_content_is_never_served_as_itself(
    srv: Running, content: bytes, filename: str, declared: str, kind: str, mime_type: str
) -> None:
    data = upload(srv, content, filename, declared)
    assert (data["type"], data["mime_type"]) == (kind, mime_type)
    response = download(srv, data["attachment_id"])
    assert response.content == content
    assert response.headers["content-type"] == mime_type
    assert response.headers["x-content-type-options"] == "nosniff"
    inline = kind in ("image", "record", "video")
    disposition = "inline" if inline else "attachment"
    assert response.headers["content-disposition"].startswith(disposition + "; ")


def test_only_the_first_file_part_counts_and_fields_are_skipped(srv: Running) -> None:
    body = form(
        part(b"a field", name=b"session_id", filename=None),
        part(b"not the file", name=b"file", filename=None),
        part(b"first", filename=b"one.txt"),
        part(b"second", filename=b"two.txt"),
    )
    data = post_form(srv, body).json()["data"]
    assert (data["filename"], data["size"]) == ("one.txt", 5)
    assert download(srv, data["attachment_id"]).content == b"first"


def test_empty_file(srv: Running) -> None:
    data = upload(srv, b"", "empty.bin", "application/octet-stream")
    assert (data["size"], data["type"], data["mime_type"]) == (
        0,
        "file",
        "application/octet-stream",
    )
    response = download(srv, data["attachment_id"])
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-length"] == "0"
    response = download(srv, data["attachment_id"], range="bytes=0-")
    assert (response.status_code, response.headers["content-range"]) == (416, "bytes */0")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b"../../x", "x"),
        (b"/etc/passwd", "passwd"),
        (b"C:\\x", "x"),
        (b"C:\\\\Users\\\\me\\\\report.pdf", "report.pdf"),
        (b"a\x00b", "ab"),
        (b"..", "file"),
        (b"", "file"),
        (b"caf\xc3\xa9 \xe2\x80\xae.txt", "café .txt"),
        (b"caf\xe9.txt", "café.txt"),  # not UTF-8: taken as Latin-1
    ],
)
def test_file_names_are_cleaned_and_never_used_as_paths(
    srv: Running, sent: bytes, kept: str
) -> None:
    data = post_form(srv, form(part(b"data", filename=sent))).json()["data"]
    assert data["filename"] == kept
    row = row_of(srv, data["attachment_id"])
    assert row["original_name"] == kept
    stored = (srv.data_dir / row["path"]).resolve()
    assert stored.is_relative_to((srv.data_dir / "attachments").resolve())
    assert not (srv.data_dir.parent / "x").exists()


def test_long_names_keep_255_bytes_and_the_extension(srv: Running) -> None:
    data = post_form(srv, form(part(b"data", filename=b"\xc3\xa9" * 150 + b".txt"))).json()["data"]
    name = data["filename"]
    assert name.endswith(".txt") and name.startswith("é")
    assert len(name.encode()) <= 255
    assert row_of(srv, data["attachment_id"])["path"].endswith(".txt")


def test_rfc5987_filename_star_wins(srv: Running) -> None:
    headers = (
        b'Content-Disposition: form-data; name="file"; filename="fallback.txt"; '
        b"filename*=UTF-8''%E6%8A%A5%E5%91%8A.txt\r\n\r\nx"
    )
    data = post_form(srv, form(headers)).json()["data"]
    assert data["filename"] == "报告.txt"
    disposition = download(srv, data["attachment_id"]).headers["content-disposition"]
    assert disposition == "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.txt"


def test_chunked_upload(srv: Running) -> None:
    body = form(part(b"0123456789" * 1000, filename=b"chunked.txt"))
    pieces = [body[i : i + 777] for i in range(0, len(body), 777)]
    response = httpx.post(
        srv.url + "/api/v1/file",
        content=iter(pieces),
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.json()["data"]["size"] == 10000


def test_expect_continue_upload(srv: Running) -> None:
    body = form(part(b"continued"))
    with srv.connect() as sock:
        sock.sendall(upload_head(len(body), b"Expect: 100-continue"))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        client = WireClient(sock)
        client.expect_response_for(b"POST")
        assert client.read_response().json()["data"]["size"] == 9


def test_curl_upload_and_ranged_download(srv: Running, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    source = tmp_path / "curl file.bin"
    source.write_bytes(bytes(range(256)) * 4)
    auth = f"X-API-Key: {TEST_KEY}"
    out = subprocess.run(
        ["curl", "-sS", "-H", auth, "-F", f"file=@{source}", srv.url + "/api/v1/file"],
        capture_output=True,
        check=True,
        timeout=10,
    ).stdout
    data = json.loads(out)["data"]
    assert (data["filename"], data["size"]) == ("curl file.bin", 1024)
    url = f"{srv.url}/api/v1/file?attachment_id={data['attachment_id']}"
    ranged = subprocess.run(
        ["curl", "-sS", "-H", auth, "-r", "10-19", "-D", str(tmp_path / "h"), url],
        capture_output=True,
        check=True,
        timeout=10,
    ).stdout
    assert ranged == bytes(range(10, 20))
    head = (tmp_path / "h").read_text().lower()
    assert head.startswith("http/1.1 206") and "content-range: bytes 10-19/1024" in head


# -- downloads -------------------------------------------------------------------------


def test_download_headers(srv: Running) -> None:
    content = b"plain text body\n"
    data = upload(srv, content, "résumé.txt")
    response = download(srv, data["attachment_id"])
    headers = response.headers
    assert response.content == content
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == str(len(content))
    assert headers["content-disposition"] == (
        "attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
    )
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "private, max-age=0"
    assert headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert headers["accept-ranges"] == "bytes"
    assert abs(parsedate_to_datetime(headers["last-modified"]).timestamp() - time.time()) < 60


def test_head_has_the_get_headers_and_no_body(srv: Running) -> None:
    data = upload(srv, PNG, "p.png", "image/png")
    get = download(srv, data["attachment_id"])
    head = httpx.head(
        srv.url + "/api/v1/file", params={"attachment_id": data["attachment_id"]}, headers=AUTH
    )
    assert head.status_code == 200 and head.content == b""
    for name in ("content-type", "content-length", "content-disposition", "etag", "last-modified"):
        assert head.headers[name] == get.headers[name]
    head = httpx.head(
        srv.url + "/api/v1/file",
        params={"attachment_id": data["attachment_id"]},
        headers={**AUTH, "Range": "bytes=0-1"},
    )
    assert head.status_code == 200  # Range is for GET only


def test_if_none_match_gives_304(srv: Running) -> None:
    data = upload(srv, b"cache me", "c.txt")
    etag = download(srv, data["attachment_id"]).headers["etag"]
    for header in (etag, f'"nope", W/{etag}', "*"):
        response = download(srv, data["attachment_id"], if_none_match=header)
        assert (response.status_code, response.content) == (304, b""), header
        assert response.headers["etag"] == etag
        assert "content-length" not in response.headers
        assert response.headers["cache-control"] == "private, max-age=0"
    for header in ('"other"', "garbage", etag[1:]):
        assert download(srv, data["attachment_id"], if_none_match=header).status_code == 200


@pytest.mark.parametrize(
    ("header", "status", "content_range", "body"),
    [
        ("bytes=2-4", 206, "bytes 2-4/10", b"234"),
        ("bytes=7-", 206, "bytes 7-9/10", b"789"),
        ("bytes=-3", 206, "bytes 7-9/10", b"789"),
        ("bytes=5-999999", 206, "bytes 5-9/10", b"56789"),
        ("bytes=0-0", 206, "bytes 0-0/10", b"0"),
        ("bytes=10-", 416, "bytes */10", None),
        ("bytes=10-20", 416, "bytes */10", None),
        ("bytes=-0", 416, "bytes */10", None),
        ("bytes=5-2", 200, None, b"0123456789"),  # reversed: ignored
        ("bytes=0-1,3-4", 200, None, b"0123456789"),  # multi-range: ignored
        ("bytes=abc", 200, None, b"0123456789"),  # malformed: ignored
        ("items=0-1", 200, None, b"0123456789"),
        ("bytes=" + "9" * 5000 + "-", 416, "bytes */10", None),
    ],
)
def test_ranges(
    srv: Running, header: str, status: int, content_range: str | None, body: bytes | None
) -> None:
    data = upload(srv, b"0123456789", "digits.txt")
    response = download(srv, data["attachment_id"], range=header)
    assert response.status_code == status
    assert response.headers.get("content-range") == content_range
    if body is not None:
        assert response.content == body
        assert response.headers["content-length"] == str(len(body))
    else:
        assert response.json()["status"] == "error"


def test_large_file_streams_intact(srv: Running) -> None:
    content = os.urandom(LIMIT)
    data = upload(srv, content, "big.bin", "application/octet-stream")
    assert row_of(srv, data["attachment_id"])["sha256"] == hashlib.sha256(content).hexdigest()
    assert download(srv, data["attachment_id"]).content == content
    middle = download(srv, data["attachment_id"], range="bytes=1000-600000")
    assert middle.content == content[1000:600001]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Missing key: attachment_id"),
        ("?attachment_id=", "Missing key: attachment_id"),
        ("?attachment_id=00000000-0000-0000-0000-000000000000", "Attachment not found"),
        ("?attachment_id=%27%20OR%20%271%27%3D%271", "Attachment not found"),
        ("?attachment_id=x%27%3B%20DROP%20TABLE%20attachments%3B--", "Attachment not found"),
        ("?attachment_id=%20", "Attachment not found"),
    ],
)
def test_download_errors(srv: Running, query: str, message: str) -> None:
    upload(srv, b"something to find")
    response = httpx.get(srv.url + "/api/v1/file" + query, headers=AUTH)
    assert error_of(response) == message
    assert rows(srv.data_dir)  # the table is still there


def test_another_keys_attachment_is_not_found(srv: Running) -> None:
    other = srv.create_key(scopes=["file"])
    theirs = upload(srv, b"theirs", key=other["api_key"])
    ours = upload(srv, b"ours")
    assert row_of(srv, theirs["attachment_id"])["owner_key_id"] == other["key_id"]
    assert error_of(download(srv, theirs["attachment_id"])) == "Attachment not found"
    assert error_of(download(srv, ours["attachment_id"], other["api_key"])) == (
        "Attachment not found"
    )
    assert download(srv, theirs["attachment_id"], other["api_key"]).content == b"theirs"


def test_missing_file_is_a_file_access_error_and_logged(
    srv: Running, caplog: pytest.LogCaptureFixture
) -> None:
    gone = upload(srv, b"soon gone")
    path = srv.data_dir / row_of(srv, gone["attachment_id"])["path"]
    path.unlink()
    folder = upload(srv, b"replaced by a directory")
    path = srv.data_dir / row_of(srv, folder["attachment_id"])["path"]
    path.unlink()
    path.mkdir()
    with caplog.at_level(logging.WARNING, logger="astrlite"):
        for attachment_id in (gone["attachment_id"], folder["attachment_id"]):
            response = download(srv, attachment_id)
            assert error_of(response) == "File access error"
            assert str(srv.data_dir) not in response.text
    assert gone["attachment_id"] in caplog.text


def test_method_not_allowed_lists_post_then_get(srv: Running) -> None:
    response = httpx.put(srv.url + "/api/v1/file", headers=AUTH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, GET, HEAD, OPTIONS"


def test_honest_statuses_with_http_errors() -> None:
    with running_server(http_errors=True) as srv:
        assert post_form(srv, b"{}", content_type="application/json").status_code == 400
        response = post_form(srv, b"x", content_type="multipart/form-data")
        assert response.status_code == 400
        assert download(srv, "unknown").status_code == 404
        data = upload(srv, b"x")
        (srv.data_dir / row_of(srv, data["attachment_id"])["path"]).unlink()
        assert download(srv, data["attachment_id"]).status_code == 410


# -- bad uploads -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"file": "x"}', "application/json", "Missing key: file"),
        (b"", None, "Missing key: file"),
        (b"", "text/plain", "Missing key: file"),
        (form(), None, "Missing key: file"),
        (form(part(b"x", name=b"files")), None, "Missing key: file"),
        (form(part(b"x", filename=None)), None, "Missing key: file"),
        (
            form(part(b"x")),
            "multipart/form-data",
            "Malformed multipart body: no boundary in Content-Type",
        ),
        (
            form(part(b"x")),
            "multipart/form-data; boundary=",
            "Malformed multipart body: empty boundary in Content-Type",
        ),
        (
            form(part(b"x"), boundary="other"),
            None,
            "Malformed multipart body: boundary not found in body",
        ),
        (
            form(part(b"x"))[:-12],
            None,
            "Malformed multipart body: body ended before the closing boundary",
        ),
        (
            form(part(b"x").replace(b"\r\n\r\n", b"\r\nX-Pad: " + b"p" * 9000 + b"\r\n\r\n")),
            None,
            "Malformed multipart body: part headers too large (limit 8192 bytes)",
        ),
        (
            form(*[part(b"", name=b"f", filename=None)] * 10000),
            None,
            "Malformed multipart body: too many parts (limit 1000)",
        ),
        (
            form(b"Content-Type: text/plain\r\n\r\nx"),
            None,
            "Malformed multipart body: part has no Content-Disposition header",
        ),
    ],
)
def test_bad_forms(srv: Running, body: bytes, content_type: str | None, message: str) -> None:
    before = len(rows(srv.data_dir))
    response = post_form(srv, body, content_type=content_type)
    assert error_of(response) == message
    assert len(rows(srv.data_dir)) == before
    assert incoming(srv.data_dir) == []


def test_content_length_smaller_than_the_body(srv: Running) -> None:
    body = form(part(b"abcdef"))
    with srv.connect() as sock:
        sock.sendall(upload_head(len(body) - 20) + body)
        client = WireClient(sock)
        client.expect_response_for(b"POST")
        response = client.read_response()
    assert response.json()["message"] == (
        "Malformed multipart body: body ended before the closing boundary"
    )
    assert incoming(srv.data_dir) == []


def test_content_length_larger_than_the_body_times_out(srv: Running) -> None:
    before = len(rows(srv.data_dir))
    body = form(part(b"abcdef"))
    answer = raw_request(srv, upload_head(len(body) + 100), body)
    assert status_of(answer) == 408
    assert json.loads(body_of(answer))["message"] == "Request timed out"
    assert len(rows(srv.data_dir)) == before
    assert incoming(srv.data_dir) == []


def test_trickled_upload_times_out_and_leaves_nothing(srv: Running) -> None:
    before = len(rows(srv.data_dir))
    body = form(part(b"x" * 1000))
    with srv.connect() as sock:
        sock.sendall(upload_head(len(body)) + body[:300])
        for byte in body[300:330]:
            if select.select([sock], [], [], 0.05)[0]:  # answered: stop sending
                break
            sock.sendall(bytes([byte]))
        answer = read_until_close(sock)
    assert status_of(answer) == 408
    assert len(rows(srv.data_dir)) == before
    assert incoming(srv.data_dir) == []


def test_declared_too_large_is_refused_before_the_body(srv: Running) -> None:
    for expect in ((b"Expect: 100-continue",), ()):
        with srv.connect() as sock:
            sock.sendall(upload_head(LIMIT + 70 * 1024, *expect))
            answer = read_until_close(sock)
        assert status_of(answer) == 413, expect
        assert b"100 Continue" not in answer
        assert json.loads(body_of(answer))["message"] == TOO_LARGE


def test_file_over_the_limit_is_refused_while_streaming(srv: Running) -> None:
    before = len(rows(srv.data_dir))
    response = post_form(srv, form(part(b"x" * (LIMIT + 1))))
    assert (response.status_code, response.json()["message"]) == (413, TOO_LARGE)
    assert response.headers["connection"] == "close"
    chunked = httpx.post(
        srv.url + "/api/v1/file",
        content=iter([form(part(b"y" * (LIMIT + 1)))]),
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert (chunked.status_code, chunked.json()["message"]) == (413, TOO_LARGE)
    eventually(lambda: incoming(srv.data_dir) == [])
    assert len(rows(srv.data_dir)) == before
    assert upload(srv, b"x" * LIMIT)["size"] == LIMIT  # exactly the limit is fine


def test_client_disconnect_mid_upload_leaves_nothing(srv: Running) -> None:
    before = len(rows(srv.data_dir))
    opening = form(part(b"x" * 200_000))[:150_000]
    for how in ("close", "reset"):
        sock = srv.connect()
        sock.sendall(upload_head(len(opening) + 100_000) + opening)
        eventually(lambda: len(incoming(srv.data_dir)) == 1)
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        eventually(lambda: incoming(srv.data_dir) == [])
    assert len(rows(srv.data_dir)) == before
    assert upload(srv, b"still serving")["size"] == 13


# -- a server killed mid-upload --------------------------------------------------------


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "ASTRLITE_API_KEY": TEST_KEY, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "astrlite", "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    assert match, line
    return process, int(match[1])


def test_sigkill_mid_upload_leaves_no_row_and_the_next_start_cleans_up(tmp_path: Path) -> None:
    process, port = start_server(tmp_path)
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        opening = form(part(b"z" * 300_000))[:200_000]
        sock.sendall(upload_head(len(opening) + 200_000) + opening)
        eventually(lambda: len(incoming(tmp_path)) == 1)
        process.send_signal(signal.SIGKILL)
        process.wait(5)
        sock.close()
    finally:
        process.kill()
        process.wait(5)
    assert len(incoming(tmp_path)) == 1
    assert rows(tmp_path) == []
    process, _ = start_server(tmp_path)
    try:
        assert incoming(tmp_path) == []
        assert list((tmp_path / "attachments").iterdir()) == [
            tmp_path / "attachments" / ".incoming"
        ]
    finally:
        process.terminate()
        process.wait(10)
