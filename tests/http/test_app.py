"""The request pipeline: route, authenticate against the entry, call the handler, and
turn every error into a response in one place. Driven through the memory transport."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import pytest

from astrlite.errors import ApiError, business
from astrlite.http.auth import find_key
from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Route
from astrlite.principal import Principal
from tests.support.memory import Harness, MemoryClient, serve_in_memory

pytestmark = pytest.mark.anyio

KEYS = {
    "abk_chat": Principal("k-chat", frozenset({"chat"})),
    "abk_all": Principal("k-all", frozenset({"*"})),
}


async def whoami(request: Request) -> Response:
    principal = request.principal
    return json_ok(None if principal is None else principal.key_id)


async def conflict(request: Request) -> Response:
    raise business(409, "config_name is ambiguous, please use config_id: x")


async def explode(request: Request) -> Response:
    raise RuntimeError("boom: secret detail")


ROUTES = {
    "/api/v1/chat": {"POST": Route(whoami, scope="chat")},
    "/api/v1/file": {"GET": Route(whoami, scope="file")},
    "/api/v1/conflict": {"GET": Route(conflict, scope="chat")},
    "/api/v1/explode": {"GET": Route(explode, scope="chat")},
    "/api/v1/openapi.json": {"GET": Route(whoami, public=True)},
    "/health": {"GET": Route(whoami, public=True)},
}


class Touches:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, principal: Principal) -> None:
        self.seen.append(principal.key_id)


@pytest.fixture
def touches() -> Touches:
    return Touches()


@pytest.fixture
async def server(touches: Touches) -> AsyncIterator[Harness]:
    with anyio.fail_after(5):
        async with serve_in_memory(ROUTES, verify_key=KEYS.get, touch=touches) as harness:
            yield harness


async def ask(client: MemoryClient, method: str, target: str, key: str | None = None) -> object:
    headers = [] if key is None else [("x-api-key", key)]
    client.request(method, target, headers=headers, body=b"" if method == "POST" else None)
    reply = await client.response()
    return reply.status, reply.json()["message"], reply.json()["data"]


async def test_a_key_and_its_scope_reach_the_handler(server: Harness, touches: Touches) -> None:
    client = server.connect()
    assert await ask(client, "POST", "/api/v1/chat", "abk_chat") == (200, None, "k-chat")
    assert await ask(client, "POST", "/api/v1/chat", "abk_all") == (200, None, "k-all")
    assert touches.seen == ["k-chat", "k-all"]


@pytest.mark.parametrize(
    ("method", "target", "key", "expected"),
    [
        ("POST", "/api/v1/chat", None, (401, "Missing API key", None)),
        ("POST", "/api/v1/chat", "abk_nope", (401, "Invalid API key", None)),
        ("GET", "/api/v1/file", "abk_chat", (403, "Insufficient API key scope", None)),
        # Auth comes before routing on every /api/v1 path, known or not.
        ("GET", "/api/v1/nope", None, (401, "Missing API key", None)),
        ("GET", "/api/v1x", None, (401, "Missing API key", None)),
        ("GET", "/api/v1/nope", "abk_chat", (404, "Not found", None)),
        ("DELETE", "/api/v1/file", "abk_chat", (403, "Insufficient API key scope", None)),
        ("DELETE", "/api/v1/chat", "abk_chat", (405, "Method not allowed", None)),
    ],
)
async def test_refusals(
    server: Harness,
    touches: Touches,
    method: str,
    target: str,
    key: str | None,
    expected: object,
) -> None:
    assert await ask(server.connect(), method, target, key) == expected
    if expected[0] in (401, 403):  # type: ignore[index]
        assert touches.seen == []  # a refused key is never touched


async def test_public_routes_and_paths_outside_the_api_need_no_key(server: Harness) -> None:
    client = server.connect()
    # No principal: the handler answers json_ok(None), whose data is {} as in AstrBot.
    assert await ask(client, "GET", "/api/v1/openapi.json") == (200, None, {})
    assert await ask(client, "GET", "/health") == (200, None, {})
    assert await ask(client, "GET", "/elsewhere") == (404, "Not found", None)


async def test_business_errors_are_200_unless_http_errors(server: Harness) -> None:
    message = "config_name is ambiguous, please use config_id: x"
    assert await ask(server.connect(), "GET", "/api/v1/conflict", "abk_chat") == (
        200,
        message,
        None,
    )
    async with serve_in_memory(ROUTES, verify_key=KEYS.get, http_errors=True) as honest:
        assert await ask(honest.connect(), "GET", "/api/v1/conflict", "abk_chat") == (
            409,
            message,
            None,
        )


async def test_a_crash_is_a_500_without_details(
    server: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="astrlite"):
        answer = await ask(server.connect(), "GET", "/api/v1/explode", "abk_chat")
    assert answer == (500, "Internal server error", None)
    assert "boom: secret detail" in caplog.text


async def test_query_keys_can_be_refused() -> None:
    async with serve_in_memory(ROUTES, verify_key=KEYS.get, no_query_keys=True) as server:
        client = server.connect()
        assert await ask(client, "POST", "/api/v1/chat?api_key=abk_chat") == (
            401,
            "API keys in the query string are disabled",
            None,
        )
        assert await ask(client, "POST", "/api/v1/chat", "abk_chat") == (200, None, "k-chat")


def carried(query: list[tuple[str, str]], headers: list[tuple[bytes, bytes]]) -> object:
    class NoBody:
        async def receive_chunk(self, limit: int) -> bytes | None:
            return None

    found = find_key(Request("GET", "/", tuple(query), headers, NoBody(), 0))
    return None if found is None else (found.key, found.from_query)


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ([("api_key", "a"), ("key", "b")], [(b"x-api-key", b"c")], ("a", True)),
        ([("api_key", ""), ("key", "b")], [(b"x-api-key", b"c")], ("b", True)),
        ([("api_key", " ")], [(b"x-api-key", b"c")], ("", True)),  # blank wins, then empty
        ([], [(b"x-api-key", b" c "), (b"authorization", b"Bearer d")], ("c", False)),
        ([], [(b"authorization", b"  Bearer  d ")], ("d", False)),
        ([], [(b"authorization", b"ApiKey e")], ("e", False)),
        ([], [(b"authorization", b"bearer d")], None),  # the prefix is case-sensitive
        ([], [(b"x-api-key", b"1"), (b"x-api-key", b"2")], ("1", False)),
        ([], [], None),
    ],
)
def test_carriers_in_astrbot_order(
    query: list[tuple[str, str]], headers: list[tuple[bytes, bytes]], expected: object
) -> None:
    """docs/compatibility.md M4 (the 4.22 order)."""
    assert carried(query, headers) == expected


async def test_a_handler_error_with_close_ends_the_connection(server: Harness) -> None:
    async def refuse(request: Request) -> Response:
        raise ApiError(413, "too big", close=True)

    async with serve_in_memory({"/x": {"GET": Route(refuse, public=True)}}) as other:
        client = other.connect()
        client.request("GET", "/x")
        reply = await client.response()
        assert (reply.status, reply.header(b"connection")) == (413, b"close")
        await client.closed_by_server()
