"""The router: one entry per path and method; 404, 405 with Allow, OPTIONS, HEAD (F1)."""

from __future__ import annotations

import pytest

from astrlite.errors import ApiError
from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Route, Router, allowed_methods

pytestmark = pytest.mark.anyio


async def get_handler(request: Request) -> Response:
    return json_ok("get")


async def post_handler(request: Request) -> Response:
    return json_ok("post")


GET = Route(get_handler, scope="file")
POST = Route(post_handler, scope="file")
ROUTER = Router(
    {
        "/file": {"POST": POST, "GET": GET},
        "/chat": {"POST": Route(post_handler, scope="chat")},
        "/open": {"GET": Route(get_handler, public=True)},
    }
)


def request(method: str) -> Request:
    return Request(method, "/", (), [], _NoBody(), 0)


class _NoBody:
    async def receive_chunk(self, limit: int) -> bytes | None:
        return None


def route_of(method: str, path: str) -> Route | None:
    found = ROUTER.find(method, path)
    if found is None:
        return None
    route, params = found
    assert params == {}  # no templates here (tests/http/test_router_templates.py)
    return route


def test_a_path_and_method_find_their_entry() -> None:
    assert route_of("GET", "/file") is GET
    assert route_of("POST", "/file") is POST


def test_head_uses_get() -> None:
    assert route_of("HEAD", "/file") is GET


def test_an_unknown_path_has_no_entry() -> None:
    assert route_of("GET", "/nope") is None
    assert route_of("GET", "/file/") is None


async def test_a_wrong_method_is_405_with_allow_under_the_path_policy() -> None:
    route = route_of("DELETE", "/file")
    assert route is not None and route.scope == "file"
    with pytest.raises(ApiError) as caught:
        await route.handler(request("DELETE"))
    assert (caught.value.status, caught.value.message) == (405, "Method not allowed")
    assert caught.value.headers == ((b"allow", b"POST, GET, HEAD, OPTIONS"),)


async def test_options_answers_200_with_allow() -> None:
    route = route_of("OPTIONS", "/chat")
    assert route is not None and route.scope == "chat"
    response = await route.handler(request("OPTIONS"))
    assert (response.status, response.headers) == (200, [(b"allow", b"POST, OPTIONS")])


def test_a_public_path_keeps_its_policy_for_other_methods() -> None:
    route = route_of("POST", "/open")
    assert route is not None and route.public and route.scope is None


def test_allow_lists_table_order_then_head_and_options() -> None:
    assert allowed_methods({"GET": GET}) == ["GET", "HEAD", "OPTIONS"]
    assert allowed_methods({"HEAD": GET, "GET": GET}) == ["HEAD", "GET", "OPTIONS"]
    assert allowed_methods({"POST": POST}) == ["POST", "OPTIONS"]
