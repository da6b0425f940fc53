"""THE route table: every path and method, its handler and who may call it.

A handler factory takes the running server's services and returns the handler (or None
when the route does not exist in this configuration). Each entry needs exactly one
scope, or is public; authentication reads the matched entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from astrlite.endpoints import (
    chat,
    chat_ws,
    configs,
    files,
    health,
    im,
    metrics,
    openapi,
    page,
    sessions,
    system_config,
)
from astrlite.http.router import Handler, Route, RouteTable
from astrlite.services import Services

Factory = Callable[[Services], Handler | None]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    factory: Factory
    scope: str | None = None
    public: bool = False
    websocket: bool = False


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/api/v1/openapi.json", openapi.get_openapi, public=True),
    RouteSpec("POST", "/api/v1/chat", chat.post_chat, "chat"),
    RouteSpec("GET", "/api/v1/chat/sessions", chat.list_sessions, "chat"),
    RouteSpec("GET", "/api/v1/chat/configs", configs.list_chat_configs, "chat"),
    RouteSpec("GET", chat_ws.PATH, chat_ws.chat_ws, "chat", websocket=True),
    RouteSpec("GET", "/api/v1/chat/sessions/new", sessions.new_session, "chat"),
    RouteSpec("POST", "/api/v1/chat/sessions/batch-delete", sessions.batch_delete, "chat"),
    RouteSpec("GET", "/api/v1/chat/sessions/{session_id}", sessions.get_session, "chat"),
    RouteSpec("PATCH", "/api/v1/chat/sessions/{session_id}", sessions.rename_session, "chat"),
    RouteSpec("DELETE", "/api/v1/chat/sessions/{session_id}", sessions.delete_session, "chat"),
    RouteSpec("POST", "/api/v1/chat/sessions/{session_id}/stop", sessions.stop_session, "chat"),
    RouteSpec("GET", "/api/v1/chat/runs/{run_id}/stream", sessions.resume_run, "chat"),
    RouteSpec("GET", "/api/v1/configs", configs.list_configs, "config"),
    RouteSpec("GET", "/api/v1/system-config", system_config.get_config, "config"),
    RouteSpec("PUT", "/api/v1/system-config", system_config.put_config, "config"),
    RouteSpec("POST", "/api/v1/file", files.upload, "file"),
    RouteSpec("GET", "/api/v1/file", files.download, "file"),
    RouteSpec("POST", "/api/v1/files", files.upload, "file"),
    # An exact path before the template it would also fit (AstrBot's order).
    RouteSpec("GET", "/api/v1/files/content", files.download_by_name, "file"),
    RouteSpec("GET", files.ID_PATH, files.download_by_id, "file"),
    RouteSpec("DELETE", files.ID_PATH, files.delete, "file"),
    RouteSpec("GET", files.ID_PATH + "/content", files.download_by_id, "file"),
    RouteSpec("POST", "/api/v1/im/message", im.send_message, "im"),
    RouteSpec("POST", "/api/v1/im/messages", im.send_message, "im"),
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
