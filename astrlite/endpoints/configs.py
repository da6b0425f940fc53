"""GET /api/v1/configs (scope config): the config files, default last (observed §4.4, F16)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from astrlite.http.request import Request
from astrlite.http.response import Response, fixed_json_ok
from astrlite.http.router import RouteTable

if TYPE_CHECKING:
    from astrlite.runtime import Services


def routes(services: Services) -> RouteTable:
    listed = fixed_json_ok(
        {
            "configs": [
                {"id": c.id, "name": c.name, "path": c.path, "is_default": c.is_default}
                for c in services.configs.listed()
            ]
        }
    )

    async def list_configs(request: Request) -> Response:
        return listed()

    return {"/api/v1/configs": {"GET": list_configs}}
