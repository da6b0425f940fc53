"""Path templates in the router: exact paths first, then templates in table order."""

from __future__ import annotations

import pytest

from astrlite.http.request import Request
from astrlite.http.response import Response
from astrlite.http.router import Route, Router, Template


def route(scope: str = "chat") -> Route:
    async def answer(request: Request) -> Response:
        return Response(200)

    return Route(answer, scope)


NEW, ONE, STOP, CONTENT, FILE = (route() for _ in range(5))
ROUTER = Router(
    {
        "/api/v1/chat/sessions/new": {"GET": NEW},
        "/api/v1/chat/sessions/{session_id}": {"GET": ONE, "DELETE": ONE},
        "/api/v1/chat/sessions/{session_id}/stop": {"POST": STOP},
        "/api/v1/files/content": {"GET": CONTENT},
        "/api/v1/files/{attachment_id}": {"GET": FILE},
    }
)


@pytest.mark.parametrize(
    ("method", "path", "expected", "params"),
    [
        ("GET", "/api/v1/chat/sessions/new", NEW, {}),
        ("GET", "/api/v1/chat/sessions/abc", ONE, {"session_id": "abc"}),
        ("HEAD", "/api/v1/chat/sessions/abc", ONE, {"session_id": "abc"}),
        ("DELETE", "/api/v1/chat/sessions/a b", ONE, {"session_id": "a b"}),
        ("POST", "/api/v1/chat/sessions/x/stop", STOP, {"session_id": "x"}),
        ("GET", "/api/v1/files/content", CONTENT, {}),
        ("GET", "/api/v1/files/f1", FILE, {"attachment_id": "f1"}),
        ("GET", "/api/v1/chat/sessions/{session_id}", ONE, {"session_id": "{session_id}"}),
    ],
)
def test_matches(method: str, path: str, expected: Route, params: dict[str, str]) -> None:
    found = ROUTER.find(method, path)
    assert found is not None
    assert found[0] is expected and dict(found[1]) == params


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/chat/sessions/",
        "/api/v1/chat/sessions//stop",
        "/api/v1/chat/sessions/a/b",
        "/api/v1/chat/sessions/a/stop/more",
        "/api/v1/files",
    ],
)
def test_unknown_paths(path: str) -> None:
    assert ROUTER.find("GET", path) is None


@pytest.mark.anyio
async def test_wrong_method_on_a_template_is_405_with_its_allow() -> None:
    found = ROUTER.find("PUT", "/api/v1/chat/sessions/abc")
    assert found is not None
    refuse, params = found
    assert refuse.scope == "chat" and params == {"session_id": "abc"}
    options = ROUTER.find("OPTIONS", "/api/v1/chat/sessions/abc")
    assert options is not None
    answered = await options[0].handler(None)  # type: ignore[arg-type]
    assert answered.headers == [(b"allow", b"GET, DELETE, HEAD, OPTIONS")]


def test_template_parts() -> None:
    template = Template.parse("/a/{x}/b/{y}")
    assert template.match("/a/1/b/2") == {"x": "1", "y": "2"}
    assert template.match("/a/1/c/2") is None
