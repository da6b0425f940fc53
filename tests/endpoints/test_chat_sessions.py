"""GET /api/v1/chat/sessions over real sockets (docs/compatibility.md M8, F17, F20)."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import TEST_KEY, Running, running_server

HEADERS = {"X-API-Key": TEST_KEY}
FIELDS = [
    "session_id",
    "platform_id",
    "creator",
    "display_name",
    "is_group",
    "created_at",
    "updated_at",
]


@pytest.fixture(scope="module")
def srv() -> Iterator[Running]:
    with running_server() as running:
        yield running


def chat(srv: Running, username: str, session_id: str, message: Any = "hello") -> None:
    body = {"username": username, "session_id": session_id, "message": message}
    response = httpx.post(srv.url + "/api/v1/chat", json=body, headers=HEADERS, timeout=10)
    assert b'data: {"type": "end"' in response.content, response.content


def sessions(srv: Running, query: str) -> dict[str, Any]:
    response = httpx.get(srv.url + "/api/v1/chat/sessions?" + query, headers=HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    reply: dict[str, Any] = response.json()
    return reply


def data(srv: Running, query: str) -> dict[str, Any]:
    reply = sessions(srv, query)
    assert reply["status"] == "ok", reply
    result: dict[str, Any] = reply["data"]
    return result


def ids(srv: Running, query: str) -> list[str]:
    return [s["session_id"] for s in data(srv, query)["sessions"]]


def insert_session(
    srv: Running, session_id: str, creator: str, platform_id: str, updated_at: str
) -> None:
    with sqlite3.connect(srv.data_dir / "astrlite.db") as conn:
        conn.execute(
            "INSERT INTO sessions (session_id, platform_id, creator, is_group, created_at,"
            " updated_at) VALUES (?, ?, ?, 0, ?, ?)",
            (session_id, platform_id, creator, updated_at, updated_at),
        )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Missing key: username"),
        ("page=1", "Missing key: username"),
        ("username=", "username is empty"),
        ("username=%20%20", "username is empty"),
        ("username=a&page=x&page_size=y", "page and page_size must be integers"),
        ("username=a&page=1.5", "page and page_size must be integers"),
        ("username=a&page_size=abc", "page and page_size must be integers"),
        ("username=a&page=", "page and page_size must be integers"),
        ("username=a&page=" + "9" * 5000, "page and page_size must be integers"),
    ],
)
def test_errors(srv: Running, query: str, message: str) -> None:
    assert sessions(srv, query) == {"status": "error", "message": message, "data": None}


def test_http_error_statuses() -> None:
    with running_server(http_errors=True) as srv:
        for query in ("", "username=%20", "username=a&page=x"):
            response = httpx.get(srv.url + "/api/v1/chat/sessions?" + query, headers=HEADERS)
            assert response.status_code == 400


def test_listing_shape_and_pagination(srv: Running) -> None:
    for n in range(3):
        chat(srv, "pager", f"pager-{n}")
    chat(srv, "someone-else", "elsewhere")
    result = data(srv, "username=pager&page=1&page_size=2")
    assert (result["page"], result["page_size"], result["total"]) == (1, 2, 3)
    assert [s["session_id"] for s in result["sessions"]] == ["pager-2", "pager-1"]
    first = result["sessions"][0]
    assert list(first) == FIELDS
    assert first["platform_id"] == "webchat" and first["creator"] == "pager"
    assert first["is_group"] == 0 and first["display_name"] == "hello"
    assert first["created_at"].endswith("+00:00") and first["updated_at"] >= first["created_at"]
    assert ids(srv, "username=pager&page=2&page_size=2") == ["pager-0"]
    past = data(srv, "username=pager&page=3&page_size=2")
    assert (past["sessions"], past["total"]) == ([], 3)


@pytest.mark.parametrize(
    ("query", "page", "page_size"),
    [
        ("", 1, 20),
        ("&page=0&page_size=0", 1, 1),
        ("&page=-5&page_size=-1", 1, 1),
        ("&page_size=1000", 1, 100),
        ("&page=%202%20&page_size=+1", 2, 1),  # Python int(): spaces and signs
        ("&page=1_0", 10, 20),  # and digit separators
        ("&page=" + "9" * 40, int("9" * 40), 20),
    ],
)
def test_page_values_are_parsed_and_clamped(
    srv: Running, query: str, page: int, page_size: int
) -> None:
    chat(srv, "clamp", "clamp-1")
    result = data(srv, "username=clamp" + query)
    assert (result["page"], result["page_size"], result["total"]) == (page, page_size, 1)
    assert len(result["sessions"]) == (1 if page == 1 else 0)


def test_username_is_stripped_and_exact(srv: Running) -> None:
    chat(srv, "Exact", "exact-1")
    assert ids(srv, "username=%20Exact%20") == ["exact-1"]
    assert ids(srv, "username=exact") == []


def test_platform_filter(srv: Running) -> None:
    chat(srv, "plat", "plat-web")
    insert_session(srv, "plat-tg", "plat", "telegram", "2000-01-01T00:00:00+00:00")
    assert ids(srv, "username=plat") == ["plat-web", "plat-tg"]
    assert ids(srv, "username=plat&platform_id=") == ["plat-web", "plat-tg"]
    assert ids(srv, "username=plat&platform_id=telegram") == ["plat-tg"]
    assert data(srv, "username=plat&platform_id=webchat")["total"] == 1


def test_order_follows_the_latest_message(srv: Running) -> None:
    """F17: updated_at moves with every message; ties go by session_id."""
    for name in ("a", "b", "c"):
        chat(srv, "order", f"order-{name}")
    assert ids(srv, "username=order") == ["order-c", "order-b", "order-a"]
    chat(srv, "order", "order-a")
    assert ids(srv, "username=order") == ["order-a", "order-c", "order-b"]
    for name in ("z", "y"):
        insert_session(srv, f"order-{name}", "order", "webchat", "2100-01-01T00:00:00+00:00")
    assert ids(srv, "username=order")[:2] == ["order-y", "order-z"]


def test_display_name_is_the_first_text(srv: Running, tmp_path: Path) -> None:
    """F20: the first user message's text on one line, cut to 40 characters; a message
    without text leaves it unset until one with text comes."""
    chat(srv, "titles", "title-a", "  Line one\n\nline two, and much more text after that  ")
    chat(srv, "titles", "title-a", "a later message")
    chat(srv, "titles", "title-b", "短い")
    chat(
        srv,
        "titles",
        "title-c",
        [{"type": "reply", "message_id": 1}, {"type": "plain", "text": "x"}],
    )
    picture = tmp_path / "p.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    store = functools.partial(
        srv.services.attachments.store_copy,
        picture,
        filename="p.png",
        kind=None,
        owner_key_id="static:1",
    )
    attachment = srv.portal.call(store)
    chat(srv, "titles", "title-d", [{"type": "image", "attachment_id": attachment.attachment_id}])
    names = {s["session_id"]: s["display_name"] for s in data(srv, "username=titles")["sessions"]}
    assert names == {
        "title-a": "Line one line two, and much more text af",
        "title-b": "短い",
        "title-c": "x",
        "title-d": None,
    }
    chat(srv, "titles", "title-d", "now with text")
    assert data(srv, "username=titles")["sessions"][0]["display_name"] == "now with text"
    listed = httpx.get(
        srv.url + "/api/v1/chat/sessions", params={"username": "titles"}, headers=HEADERS
    )
    assert "\\u77ed\\u3044" in listed.text  # the envelope escapes non-ASCII
    assert json.loads(listed.text)["data"]["total"] == 4


def test_sessions_of_ten_thousand_character_usernames(srv: Running) -> None:
    username = "n" * 10_000
    chat(srv, username, "long-user")
    assert ids(srv, "username=" + username) == ["long-user"]
