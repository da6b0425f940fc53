"""--cors-origins: parsing and the headers of answers and preflights."""

from __future__ import annotations

import pytest

from astrlite.http.cors import CorsError, parse_origins


def test_empty_is_off() -> None:
    assert parse_origins("") is None
    assert parse_origins(" , ") is None


def test_a_list_allows_exactly_its_origins() -> None:
    policy = parse_origins("https://app.example.org, http://localhost:5173/")
    assert policy is not None
    assert policy.allows("http://localhost:5173")
    assert not policy.allows("https://evil.example.org")
    headers = dict(policy.response_headers(b"https://app.example.org"))
    assert headers[b"access-control-allow-origin"] == b"https://app.example.org"
    assert headers[b"vary"] == b"Origin"
    assert b"Content-Disposition" in headers[b"access-control-expose-headers"]
    assert policy.response_headers(b"https://evil.example.org") == []
    assert policy.response_headers(None) == []


def test_star_allows_any_origin_without_vary() -> None:
    policy = parse_origins("*")
    assert policy is not None
    headers = dict(policy.preflight_headers(b"https://x.example", b"POST, OPTIONS"))
    assert headers[b"access-control-allow-origin"] == b"*"
    assert b"vary" not in headers
    assert headers[b"access-control-allow-methods"] == b"POST, OPTIONS"
    allowed = headers[b"access-control-allow-headers"].decode().split(", ")
    assert {"X-API-Key", "Authorization", "Content-Type", "Last-Event-ID"} <= set(allowed)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("example.org", "expected * or origins such as https://app.example.org, got 'example.org'"),
        ("https://a.org, *", "expected * or origins such as https://app.example.org, got '*'"),
        ("ftp://a.org", "got 'ftp://a.org'"),
        ("https://a.org/app", "an origin has no path: 'https://a.org/app' (try https://a.org)"),
    ],
)
def test_bad_values_say_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(
        CorsError, match=message.replace("*", r"\*").replace("(", r"\(").replace(")", r"\)")
    ):
        parse_origins(text)
