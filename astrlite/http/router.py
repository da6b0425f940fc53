"""One table {path: {method: Route}}: 404, 405 with Allow, OPTIONS, HEAD via GET (F1).

Each entry carries its handler and its access policy, so authentication reads the
matched entry and nothing else keeps per-route policy.

A path may be a template: a segment ``{name}`` matches any one non-empty segment of the
decoded path, given to the handler as ``request.params[name]``. Exact paths win over
templates (``/files/content`` before ``/files/{attachment_id}``); templates are tried
in table order.
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
    # handshake, which reports a failure in-band (M17).
    websocket: bool = False

    def __post_init__(self) -> None:
        if (self.scope is None) != self.public:
            raise ValueError("a route is either public or needs exactly one scope")


RouteTable = Mapping[str, Mapping[str, Route]]
Params = Mapping[str, str]
NO_PARAMS: Params = {}


@dataclass(frozen=True, slots=True)
class Template:
    """A path with ``{name}`` segments."""

    path: str
    segments: tuple[str, ...]  # a literal, or "" where a parameter goes
    names: tuple[str | None, ...]  # the parameter's name, or None for a literal

    @classmethod
    def parse(cls, path: str) -> Template:
        parts = path.split("/")
        names = tuple(p[1:-1] if p.startswith("{") and p.endswith("}") else None for p in parts)
        segments = tuple("" if n is not None else p for p, n in zip(parts, names, strict=True))
        return cls(path, segments, names)

    def match(self, path: str) -> Params | None:
        parts = path.split("/")
        if len(parts) != len(self.segments):
            return None
        params = {}
        for part, literal, name in zip(parts, self.segments, self.names, strict=True):
            if name is None:
                if part != literal:
                    return None
            elif not part:
                return None
            else:
                params[name] = part
        return params


def is_template(path: str) -> bool:
    return "{" in path


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
        self._templates = [Template.parse(path) for path in table if is_template(path)]

    def allowed(self, path: str) -> bytes | None:
        """The path's Allow value (a template's for a path it matches); None for a path
        not in the table."""
        entry = self.entry_path(path)
        return None if entry is None else self._allow[entry]

    def entry_path(self, path: str) -> str | None:
        """The table's path for a request path (itself, or the template it matches)."""
        if not is_template(path) and path in self.table:
            return path
        return next((t.path for t in self._templates if t.match(path) is not None), None)

    def find(self, method: str, path: str) -> tuple[Route, Params] | None:
        """The entry for this method and path with the path's parameters; None for an
        unknown path."""
        # A literal "{...}" in a request is matched as a value, never as the template.
        methods = None if is_template(path) else self.table.get(path)
        params = NO_PARAMS
        if methods is None:
            for template in self._templates:
                found = template.match(path)
                if found is not None:
                    path, params, methods = template.path, found, self.table[template.path]
                    break
            else:
                return None
        route = methods.get(method) or (methods.get("GET") if method == "HEAD" else None)
        if route is not None:
            return route, params
        options, refuse = self._fallbacks[path]
        return (options if method == "OPTIONS" else refuse), params


def _options(allow: bytes) -> Handler:
    async def answer(request: Request) -> Response:
        return Response(200, [(b"allow", allow)])

    return answer


def _refuse(allow: bytes) -> Handler:
    async def refuse(request: Request) -> Response:
        raise ApiError(405, METHOD_NOT_ALLOWED, headers=((b"allow", allow),))

    return refuse
