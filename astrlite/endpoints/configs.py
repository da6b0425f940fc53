"""GET /api/v1/configs (scope config): the config files, default last
(docs/compatibility.md M9, F16)."""

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
