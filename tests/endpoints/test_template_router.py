"""The path-template adapter of endpoints/files.py: exact paths first, then `{name}`
paths, one non-empty segment per parameter; 404 and 405 as for exact paths."""

from __future__ import annotations

import pytest

from astrlite.endpoints.files import TemplateRouter
from astrlite.errors import ApiError
from astrlite.http.request import Request
from astrlite.http.response import Response
from astrlite.http.router import Handler, Route


def named(name: str) -> Handler:
    async def handler(request: Request) -> Response:
        return Response(200, body=name.encode())

    handler.__name__ = name
    return handler


BY_ID, CONTENT, BY_NAME, DELETE = (named(n) for n in ("by_id", "content", "by_name", "delete"))
ROUTER = TemplateRouter(
    {
        "/api/v1/files/content": {"GET": Route(BY_NAME, "file")},
        "/api/v1/files/{attachment_id}": {
            "GET": Route(BY_ID, "file"),
            "DELETE": Route(DELETE, "file"),
        },
        "/api/v1/files/{attachment_id}/content": {"GET": Route(CONTENT, "file")},
    }
)


@pytest.mark.parametrize(
    ("method", "path", "handler"),
    [
        ("GET", "/api/v1/files/content", BY_NAME),  # the exact path wins
        ("GET", "/api/v1/files/abc", BY_ID),
        ("HEAD", "/api/v1/files/abc", BY_ID),
        ("DELETE", "/api/v1/files/abc", DELETE),
        ("GET", "/api/v1/files/abc/content", CONTENT),
        ("GET", "/api/v1/files/content/content", CONTENT),
    ],
)
def test_matches(method: str, path: str, handler: Handler) -> None:
    route = ROUTER.find(method, path)
    assert route is not None and route.handler is handler


@pytest.mark.parametrize(
    "path",
    ["/api/v1/files/", "/api/v1/files//content", "/api/v1/files/a/b", "/api/v1/files/a/content/x"],
)
def test_no_match(path: str) -> None:
    assert ROUTER.find("GET", path) is None


@pytest.mark.anyio
async def test_wrong_method_is_405_with_the_templates_methods() -> None:
    route = ROUTER.find("PUT", "/api/v1/files/abc")
    assert route is not None and route.scope == "file"  # the path's policy applies first
    with pytest.raises(ApiError) as raised:
        await route.handler(None)  # type: ignore[arg-type]
    assert raised.value.status == 405
    assert dict(raised.value.headers)[b"allow"] == b"GET, DELETE, HEAD, OPTIONS"
