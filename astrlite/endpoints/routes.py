"""THE route table: every path and method, its handler and who may call it.

A handler factory takes the running server's services and returns the handler (or None
when the route does not exist in this configuration). Each entry needs exactly one
scope, or is public; authentication reads the matched entry.

`later("module:factory")` names a factory in an endpoint module that an idle server does
not need (chat, WebSocket, files): the module is imported, and the handler made, on the
route's first request, so start-up does not pay for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, cast

from astrlite.endpoints import configs, health, im, metrics, openapi, page, system_config
from astrlite.http.router import Handler, Route, RouteTable

if TYPE_CHECKING:
    from astrlite.http.request import Request
    from astrlite.http.response import Response
    from astrlite.services import Services

Factory = Callable[["Services"], Handler | None]


@dataclass(frozen=True, slots=True)
class later:
    """The factory `target` ("module:function" in astrlite.endpoints), imported and called
    on the route's first request. Only for factories that always make a handler."""

    target: str

    def resolve(self) -> Callable[[Services], Handler]:
        module, name = self.target.split(":")
        found = getattr(import_module(f"astrlite.endpoints.{module}"), name)
        return cast(Callable[["Services"], Handler], found)

    def __call__(self, services: Services) -> Handler:
        made: list[Handler] = []

        async def handle(request: Request) -> Response:
            if not made:
                made.append(self.resolve()(services))
            return await made[0](request)

        return handle


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    factory: Factory
    scope: str | None = None
    public: bool = False
    websocket: bool = False


SESSION = "/api/v1/chat/sessions/{session_id}"
FILE = "/api/v1/files/{attachment_id}"

ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/api/v1/openapi.json", openapi.get_openapi, public=True),
    RouteSpec("POST", "/api/v1/chat", later("chat:post_chat"), "chat"),
    RouteSpec("GET", "/api/v1/chat/sessions", later("chat:list_sessions"), "chat"),
    RouteSpec("GET", "/api/v1/chat/configs", configs.list_chat_configs, "chat"),
    RouteSpec("GET", "/api/v1/chat/ws", later("chat_ws:chat_ws"), "chat", websocket=True),
    RouteSpec("GET", "/api/v1/chat/sessions/new", later("sessions:new_session"), "chat"),
    RouteSpec("POST", "/api/v1/chat/sessions/batch-delete", later("sessions:batch_delete"), "chat"),
    RouteSpec("GET", SESSION, later("sessions:get_session"), "chat"),
    RouteSpec("PATCH", SESSION, later("sessions:rename_session"), "chat"),
    RouteSpec("DELETE", SESSION, later("sessions:delete_session"), "chat"),
    RouteSpec("POST", SESSION + "/stop", later("sessions:stop_session"), "chat"),
    RouteSpec("GET", "/api/v1/chat/runs/{run_id}/stream", later("sessions:resume_run"), "chat"),
    RouteSpec("GET", "/api/v1/configs", configs.list_configs, "config"),
    RouteSpec("GET", "/api/v1/system-config", system_config.get_config, "config"),
    RouteSpec("PUT", "/api/v1/system-config", system_config.put_config, "config"),
    RouteSpec("POST", "/api/v1/file", later("files:upload"), "file"),
    RouteSpec("GET", "/api/v1/file", later("files:download"), "file"),
    RouteSpec("POST", "/api/v1/files", later("files:upload"), "file"),
    # An exact path before the template it would also fit (AstrBot's order).
    RouteSpec("GET", "/api/v1/files/content", later("files:download_by_name"), "file"),
    RouteSpec("GET", FILE, later("files:download_by_id"), "file"),
    RouteSpec("DELETE", FILE, later("files:delete"), "file"),
    RouteSpec("GET", FILE + "/content", later("files:download_by_id"), "file"),
    RouteSpec("POST", "/api/v1/im/message", later("im_message:send_message"), "im"),
    RouteSpec("POST", "/api/v1/im/messages", later("im_message:send_message"), "im"),
    RouteSpec("GET", "/api/v1/im/bots", im.list_bots, "im"),
    RouteSpec("GET", "/api/v1/im/outbox", im.list_outbox, "im"),
    RouteSpec("GET", "/health", health.get_health, public=True),
    RouteSpec("GET", "/metrics", metrics.get_metrics, public=True),
    # The chat page: absent with --no-page.
    RouteSpec("GET", "/", page.asset("/"), public=True),
    RouteSpec("GET", "/page.js", page.asset("/page.js"), public=True),
    RouteSpec("GET", "/page.css", page.asset("/page.css"), public=True),
    RouteSpec("GET", "/page.svg", page.asset("/page.svg"), public=True),
)


def build_table(services: Services) -> RouteTable:
    table: dict[str, dict[str, Route]] = {}
    for entry in ROUTES:
        handler = entry.factory(services)
        if handler is not None:
            route = Route(handler, entry.scope, entry.public, entry.websocket)
            table.setdefault(entry.path, {})[entry.method] = route
    return table
