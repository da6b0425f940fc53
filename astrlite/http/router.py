"""One table {path: {method: Route}}: 404, 405 with Allow, OPTIONS, HEAD via GET (F1).

Each entry carries its handler and its access policy, so authentication reads the
matched entry and nothing else keeps per-route policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from astrlite.errors import ApiError
from astrlite.http.request import Request
from astrlite.http.response import Response

Handler = Callable[[Request], Awaitable[Response]]

NOT_FOUND = "Not found"
METHOD_NOT_ALLOWED = "Method not allowed"


@dataclass(frozen=True, slots=True)
class Route:
    """A handler and who may call it: a key with `scope`, or anyone when `public`."""

    handler: Handler
    scope: str | None = None
    public: bool = False
    # Speaks WebSocket: an upgrade request's key is checked by the handler after the
    # handshake, which reports a failure in-band (observed §4.2).
    websocket: bool = False

    def __post_init__(self) -> None:
        if (self.scope is None) != self.public:
            raise ValueError("a route is either public or needs exactly one scope")


RouteTable = Mapping[str, Mapping[str, Route]]


def allowed_methods(methods: Mapping[str, Route]) -> list[str]:
    """The path's methods in table order, then HEAD (when GET is there) and OPTIONS."""
    allowed = list(methods)
    if "GET" in methods and "HEAD" not in methods:
        allowed.append("HEAD")
    allowed.append("OPTIONS")
    return allowed


class Router:
    def __init__(self, table: RouteTable) -> None:
        self.table = table
        # Per path, what answers a method it does not have: OPTIONS, or 405. Both take the
        # path's access policy, so a caller learns nothing about a path it may not use.
        self._fallbacks: dict[str, tuple[Route, Route]] = {}
        self._allow: dict[str, bytes] = {}
        for path, methods in table.items():
            allow = self._allow[path] = ", ".join(allowed_methods(methods)).encode()
            policy = next(iter(methods.values()))
            self._fallbacks[path] = (
                Route(_options(allow), policy.scope, policy.public, policy.websocket),
                Route(_refuse(allow), policy.scope, policy.public, policy.websocket),
            )

    def allowed(self, path: str) -> bytes | None:
        """The path's Allow value; None for a path not in the table."""
        return self._allow.get(path)

    def find(self, method: str, path: str) -> Route | None:
        """The entry for this method and path; None for an unknown path."""
        methods = self.table.get(path)
        if methods is None:
            return None
        route = methods.get(method) or (methods.get("GET") if method == "HEAD" else None)
        if route is not None:
            return route
        options, refuse = self._fallbacks[path]
        return options if method == "OPTIONS" else refuse


def _options(allow: bytes) -> Handler:
    async def answer(request: Request) -> Response:
        return Response(200, [(b"allow", allow)])

    return answer


def _refuse(allow: bytes) -> Handler:
    async def refuse(request: Request) -> Response:
        raise ApiError(405, METHOD_NOT_ALLOWED, headers=((b"allow", allow),))

    return refuse
