"""One table {path: {method: handler}}: 404, 405 with Allow, OPTIONS, HEAD via GET (F1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from astrlite.errors import ApiError
from astrlite.http.request import Request
from astrlite.http.response import Response

Handler = Callable[[Request], Awaitable[Response]]
RouteTable = Mapping[str, Mapping[str, Handler]]

NOT_FOUND = "Not found"
METHOD_NOT_ALLOWED = "Method not allowed"


def allowed_methods(methods: Mapping[str, Handler]) -> list[str]:
    """The path's methods in table order, then HEAD (when GET is there) and OPTIONS."""
    allowed = list(methods)
    if "GET" in methods and "HEAD" not in methods:
        allowed.append("HEAD")
    allowed.append("OPTIONS")
    return allowed


class Router:
    def __init__(self, table: RouteTable) -> None:
        self.table = table
        self._allow = {path: ", ".join(allowed_methods(m)).encode() for path, m in table.items()}

    def find(self, method: str, path: str) -> Handler:
        methods = self.table.get(path)
        if methods is None:
            raise ApiError(404, NOT_FOUND)
        handler = methods.get(method) or (methods.get("GET") if method == "HEAD" else None)
        if handler is not None:
            return handler
        allow = self._allow[path]
        if method == "OPTIONS":
            return _options(allow)
        raise ApiError(405, METHOD_NOT_ALLOWED, headers=((b"allow", allow),))


def _options(allow: bytes) -> Handler:
    async def answer(request: Request) -> Response:
        return Response(200, [(b"allow", allow)])

    return answer
