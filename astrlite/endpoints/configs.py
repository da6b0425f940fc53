"""GET /api/v1/configs (scope config): the config files, default last
(docs/compatibility.md M9, F16), and GET /api/v1/chat/configs (scope chat): the same list
as AstrBot 4.27's `info_list`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from astrlite.http.request import Request
from astrlite.http.response import Response, fixed_json_ok
from astrlite.http.router import Handler

if TYPE_CHECKING:
    from astrlite.services import Services


def list_configs(services: Services) -> Handler:
    listed = fixed_json_ok(
        {
            "configs": [
                {"id": c.id, "name": c.name, "path": c.path, "is_default": c.is_default}
                for c in services.configs.listed()
            ]
        },
        services.profile.envelope,
    )

    async def handle(request: Request) -> Response:
        return listed()

    return handle


def list_chat_configs(services: Services) -> Handler:
    # The raw registry: key order path, name, id for a config file, id, name, path for
    # the default; no is_default. Paths stay relative to the data directory (F16).
    info_list = fixed_json_ok(
        {
            "info_list": [
                {"id": c.id, "name": c.name, "path": c.path}
                if c.is_default
                else {"path": c.path, "name": c.name, "id": c.id}
                for c in services.configs.listed()
            ]
        },
        services.profile.envelope,
    )

    async def handle(request: Request) -> Response:
        return info_list()

    return handle
