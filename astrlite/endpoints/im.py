"""The IM endpoints: GET /api/v1/im/bots (observed §4.8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import configs
from ..request import Request
from ..response import Response, json_ok
from ..routing import RouteTable

if TYPE_CHECKING:
    from ..runtime import Services


def routes(services: Services) -> RouteTable:
    bots_body = {"bot_ids": configs.bot_ids(services.configs.default)}

    async def list_bots(request: Request) -> Response:
        return json_ok(bots_body)

    return {"/api/v1/im/bots": {"GET": list_bots}}
