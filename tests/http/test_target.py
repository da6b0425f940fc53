"""The request target: strict percent-decoding, the absolute form, log redaction."""

from __future__ import annotations

import pytest

from astrlite.errors import ApiError
from astrlite.http.target import Target, parse_target, redact


@pytest.mark.parametrize(
    ("raw", "path", "query"),
    [
        (b"/", "/", ()),
        (b"/api/v1/file?attachment_id=abc", "/api/v1/file", (("attachment_id", "abc"),)),
        (b"/a%20b?x=1+2&y=%2B&&z", "/a b", (("x", "1 2"), ("y", "+"), ("z", ""))),
        (b"/a+b", "/a+b", ()),  # "+" is a space only in the query
        (b"/%E4%BD%A0?q=%E5%A5%BD", "/\u4f60", (("q", "\u597d"),)),
        (b"/p?x=1#fragment", "/p", (("x", "1"),)),
        (b"/p?k=a=b", "/p", (("k", "a=b"),)),
        # RFC 9112 §3.2.2: the absolute form is accepted; its host does not matter.
        (b"http://example.com/api/v1/im/bots?x=1", "/api/v1/im/bots", (("x", "1"),)),
        (b"HTTPS://example.com:8443/p", "/p", ()),
        (b"http://example.com", "/", ()),
        (b"http://example.com?x=1", "/", (("x", "1"),)),
        (b"http://[::1]:6185/a%20b", "/a b", ()),
    ],
)
def test_targets(raw: bytes, path: str, query: tuple[tuple[str, str], ...]) -> None:
    assert parse_target(raw) == Target(path, query)


@pytest.mark.parametrize(
    "raw",
    [
        b"*",
        b"example.com:443",
        b"api/v1",
        b"ftp://example.com/p",
        b"http:///p",
        b"http://user@example.com/p",
        b"/%zz",
        b"/%4",
        b"/%ff%fe",
        b"/?x=%e2%28",
        b"/\xff",
    ],
)
def test_malformed_targets(raw: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        parse_target(raw)
    assert (caught.value.status, caught.value.message) == (400, "Malformed request target")


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        (b"/p", "/p"),
        (b"/p?api_key=abk_secret&x=1", "/p?api_key=REDACTED&x=1"),
        (b"/p?key=abk_secret&keyx=2&api_key", "/p?key=REDACTED&keyx=2&api_key"),
        (b"http://h/p?key=abk_secret", "http://h/p?key=REDACTED"),
    ],
)
def test_query_keys_are_redacted_for_the_log(raw: bytes, logged: str) -> None:
    assert redact(raw) == logged
