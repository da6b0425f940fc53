"""API keys over real sockets: carriers, precedence, scopes, expiry, revocation (M4, F15)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import TEST_KEY, Running, running_server
from tests.support.wire import WireClient

MISSING = {"status": "error", "message": "Missing API key", "data": None}
INVALID = {"status": "error", "message": "Invalid API key", "data": None}
SCOPE = {"status": "error", "message": "Insufficient API key scope", "data": None}

ROUTES = [
    ("POST", "/api/v1/chat", "chat"),
    ("GET", "/api/v1/chat/sessions", "chat"),
    ("GET", "/api/v1/configs", "config"),
    ("POST", "/api/v1/file", "file"),
    ("GET", "/api/v1/file", "file"),
    ("POST", "/api/v1/im/message", "im"),
    ("GET", "/api/v1/im/bots", "im"),
    ("POST", "/api/v1/im/messages", "im"),
    ("GET", "/api/v1/chat/configs", "chat"),
    ("GET", "/api/v1/system-config", "config"),
    ("PUT", "/api/v1/system-config", "config"),
    ("POST", "/api/v1/files", "file"),
    ("GET", "/api/v1/files/content", "file"),
    ("GET", "/api/v1/files/some-id", "file"),
    ("GET", "/api/v1/files/some-id/content", "file"),
    ("DELETE", "/api/v1/files/some-id", "file"),
]


@pytest.fixture(scope="module")
def srv() -> Iterator[Running]:
    with running_server(static_key=None) as running:
        yield running


@pytest.fixture(scope="module")
def im_key(srv: Running) -> str:
    key: str = srv.create_key(scopes=["im"])["api_key"]
    return key


def bots(srv: Running, **kwargs: object) -> httpx.Response:
    return httpx.get(srv.url + "/api/v1/im/bots", **kwargs)  # type: ignore[arg-type]


def test_every_carrier_works(srv: Running, im_key: str) -> None:
    for kwargs in (
        {"headers": {"X-API-Key": im_key}},
        {"params": {"api_key": im_key}},
        {"params": {"key": im_key}},
        {"headers": {"Authorization": f"Bearer {im_key}"}},
        {"headers": {"Authorization": f"ApiKey {im_key}"}},
    ):
        response = bots(srv, **kwargs)
        assert response.status_code == 200, kwargs
        assert response.json() == {"status": "ok", "message": None, "data": {"bot_ids": []}}


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ("", {}, MISSING),
        ("?api_key=&key=", {"X-API-Key": "GOOD"}, "ok"),
        ("?api_key=%20", {"X-API-Key": "GOOD"}, MISSING),
        ("?api_key=bad", {"X-API-Key": "GOOD"}, INVALID),
        ("?key=GOOD", {"X-API-Key": "bad"}, "ok"),
        ("", {"Authorization": "bearer GOOD"}, MISSING),
        ("", {"Authorization": "Bearer"}, MISSING),
        ("", {"Authorization": "Bearer    "}, MISSING),
        ("", {"X-API-Key": "   "}, MISSING),
        ("", {"X-API-Key": "abk_invalid"}, INVALID),
        ("", {"X-API-Key": "xyz_" + "a" * 43}, INVALID),
        ("", {"X-API-Key": "GOODextra"}, INVALID),
        ("", {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"}, INVALID),
    ],
)
def test_carrier_precedence_and_bad_values(
    srv: Running, im_key: str, query: str, headers: dict[str, str], expected: object
) -> None:
    # Raw bytes: httpx refuses header values with surrounding whitespace.
    lines = "".join(f"{k}: {v.replace('GOOD', im_key)}\r\n" for k, v in headers.items())
    target = "/api/v1/im/bots" + query.replace("GOOD", im_key)
    with srv.connect() as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode())
        client = WireClient(sock)
        client.expect_response_for(b"GET")
        response = client.read_response()
    if expected == "ok":
        assert response.status == 200
    else:
        assert response.status == 401
        assert response.json() == expected
        assert response.headers["content-type"] == "application/json"


def test_duplicated_header_uses_the_first(srv: Running, im_key: str) -> None:
    with srv.connect() as sock:
        sock.sendall(
            f"GET /api/v1/im/bots HTTP/1.1\r\nHost: x\r\nX-API-Key: {im_key}\r\n"
            "X-API-Key: wrong\r\nConnection: close\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("scope", ["chat", "config", "file", "im"])
def test_scope_matrix(srv: Running, scope: str) -> None:
    key = srv.create_key(scopes=[scope])["api_key"]
    for method, path, needed in ROUTES:
        response = httpx.request(method, srv.url + path, headers={"X-API-Key": key})
        if needed == scope:
            assert response.status_code not in (401, 403), (method, path)
        else:
            assert response.status_code == 403, (method, path)
            assert response.json() == SCOPE


def test_wildcard_and_null_scopes_grant_everything(srv: Running) -> None:
    wildcard = srv.create_key(scopes=["*"])
    legacy = srv.create_key(scopes=["im"])
    with sqlite3.connect(srv.data_dir / "astrlite.db") as conn:
        conn.execute("UPDATE api_keys SET scopes = 'null' WHERE key_id = ?", (legacy["key_id"],))
    for key in (wildcard["api_key"], legacy["api_key"]):
        response = httpx.get(srv.url + "/api/v1/configs", headers={"X-API-Key": key})
        assert response.status_code == 200


def test_revocation_applies_to_the_very_next_request(srv: Running) -> None:
    created = srv.create_key(scopes=["im"])
    headers = {"X-API-Key": created["api_key"]}
    with httpx.Client() as client:
        assert client.get(srv.url + "/api/v1/im/bots", headers=headers).status_code == 200
        srv.key_admin("revoke", key_id=created["key_id"])
        response = client.get(srv.url + "/api/v1/im/bots", headers=headers)
    assert response.status_code == 401
    assert response.json() == INVALID
    listed = {k["key_id"]: k for k in srv.key_admin("list_keys")}
    assert listed[created["key_id"]]["is_revoked"] is True


def test_deleted_and_expired_keys_are_invalid(srv: Running) -> None:
    deleted = srv.create_key(scopes=["im"])
    srv.key_admin("delete", key_id=deleted["key_id"])
    expiring = srv.create_key(scopes=["im"], expires_in_days=1)
    headers = {"X-API-Key": expiring["api_key"]}
    assert bots(srv, headers=headers).status_code == 200
    with sqlite3.connect(srv.data_dir / "astrlite.db") as conn:
        conn.execute(
            "UPDATE api_keys SET expires_at = '2020-01-01T00:00:00+00:00' WHERE key_id = ?",
            (expiring["key_id"],),
        )
    for key in (deleted["api_key"], expiring["api_key"]):
        response = bots(srv, headers={"X-API-Key": key})
        assert response.status_code == 401
        assert response.json() == INVALID


def test_last_used_at_is_written_at_most_once_a_minute(srv: Running) -> None:
    created = srv.create_key(scopes=["im"])
    assert created["last_used_at"] is None
    for _ in range(3):
        bots(srv, headers={"X-API-Key": created["api_key"]})
    row = next(k for k in srv.key_admin("list_keys") if k["key_id"] == created["key_id"])
    first_use = row["last_used_at"]
    assert first_use is not None
    bots(srv, headers={"X-API-Key": created["api_key"]})
    row = next(k for k in srv.key_admin("list_keys") if k["key_id"] == created["key_id"])
    assert row["last_used_at"] == first_use


def test_failed_auth_does_not_touch(srv: Running) -> None:
    created = srv.create_key(scopes=["chat"])
    httpx.get(srv.url + "/api/v1/im/bots", headers={"X-API-Key": created["api_key"]})  # 403
    row = next(k for k in srv.key_admin("list_keys") if k["key_id"] == created["key_id"])
    assert row["last_used_at"] is None


def test_routing_after_auth(srv: Running, im_key: str) -> None:
    assert httpx.get(srv.url + "/api/v1/nope").json() == MISSING
    assert httpx.get(srv.url + "/api/v1x").status_code == 401
    response = httpx.get(srv.url + "/api/v1/nope", headers={"X-API-Key": im_key})
    assert (response.status_code, response.json()["message"]) == (404, "Not found")
    response = httpx.post(srv.url + "/api/v1/im/bots", headers={"X-API-Key": im_key})
    assert (response.status_code, response.json()["message"]) == (405, "Method not allowed")
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    response = httpx.options(srv.url + "/api/v1/im/bots", headers={"X-API-Key": im_key})
    assert (response.status_code, response.headers["allow"]) == (200, "GET, HEAD, OPTIONS")
    assert httpx.get(srv.url + "/elsewhere").status_code == 404  # no key needed outside /api/v1
    assert httpx.get(srv.url + "/api/v1/openapi.json").status_code == 200  # public


def test_query_keys_can_be_refused() -> None:
    with running_server(no_query_keys=True) as srv:
        response = httpx.get(srv.url + "/api/v1/im/bots", params={"api_key": TEST_KEY})
        assert response.status_code == 401
        assert response.json()["message"] == "API keys in the query string are disabled"
        assert bots(srv, headers={"X-API-Key": TEST_KEY}).status_code == 200


def test_static_keys_have_all_scopes_and_are_not_stored(caplog: pytest.LogCaptureFixture) -> None:
    with running_server() as srv:
        for path in ("/api/v1/configs", "/api/v1/im/bots"):
            assert httpx.get(srv.url + path, headers={"X-API-Key": TEST_KEY}).status_code == 200
        assert srv.key_admin("list_keys") == []


def test_key_never_appears_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), running_server() as srv:
        httpx.get(srv.url + "/api/v1/im/bots", params={"key": TEST_KEY})
        httpx.get(srv.url + "/api/v1/im/bots", params={"api_key": "wrong-key-value"})
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("astrlite"))
    assert "GET /api/v1/im/bots?key=REDACTED" in ours
    assert TEST_KEY not in ours
    assert "wrong-key-value" not in ours
