"""The IM endpoints that read: GET /api/v1/im/bots, and GET /api/v1/im/outbox, which
exists only when an outbox platform is configured (issue 8). Sending is in im_message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from astrlite import configs
from astrlite.errors import business
from astrlite.http.request import Request
from astrlite.http.response import Response, fixed_json_ok, json_ok
from astrlite.http.router import Handler

if TYPE_CHECKING:
    from astrlite.services import Services

OUTBOX_NOT_FOUND = "outbox platform not found: {}"


def list_bots(services: Services) -> Handler:
    bots = fixed_json_ok(
        {"bot_ids": configs.bot_ids(services.configs.default)}, services.profile.envelope
    )

    async def handle(request: Request) -> Response:
        return bots()

    return handle


def list_outbox(services: Services) -> Handler | None:
    """Exists only when an outbox platform is configured."""
    platforms = services.platforms
    if not platforms.outbox_ids:
        return None

    async def handle(request: Request) -> Response:
        platform_id = request.query_value("platform_id") or None
        if platform_id is not None and (
            platform_id not in platforms.outbox_ids or platforms.running(platform_id) is None
        ):
            raise business(404, OUTBOX_NOT_FOUND.format(platform_id))
        return json_ok(
            {"messages": platforms.outbox.messages(platform_id)}, services.profile.envelope
        )

    return handle
