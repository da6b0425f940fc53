"""POST /api/v1/im/message and its AstrBot 4.27 name /api/v1/im/messages
(docs/compatibility.md M3, M12): a message sent through a running platform. Loaded on
the first send (endpoints/routes.py ``later``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from astrlite.errors import ApiError, business
from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Handler
from astrlite.im.base import Outgoing, SendError
from astrlite.im.outgoing_message import Lookups, parse_message
from astrlite.im.umo import parse_umo

if TYPE_CHECKING:
    from astrlite.services import Services

log = logging.getLogger("astrlite")

MISSING_MESSAGE = "Missing key: message"
MISSING_UMO = "Missing key: umo"
NOT_RUNNING = "Bot not found or not running for platform: {}"
SEND_FAILED = "Failed to send message: {}"


def send_message(services: Services) -> Handler:
    """POST /api/v1/im/message and /api/v1/im/messages; each business error is answered
    with the profile's status for these routes when it has one (400 under 4.27)."""
    send = _send_message(services)
    error_status = services.profile.im_error_status
    if error_status is None:
        return send

    async def handle(request: Request) -> Response:
        try:
            return await send(request)
        except ApiError as error:
            if not error.business:
                raise
            raise ApiError(error_status, error.message) from None

    return handle


def _send_message(services: Services) -> Handler:
    platforms = services.platforms

    async def handle(request: Request) -> Response:
        body = await request.json_object(services.options.max_json_bytes)
        assert request.principal is not None  # the app authenticates every /api/v1 call
        key_id = request.principal.key_id
        # The original's order (M3): message null, umo, its shape, the platform; only
        # then the parts. An absent message is {} and fails as a non-list, non-string.
        if "message" in body and body["message"] is None:
            raise business(400, MISSING_MESSAGE)
        umo_value: Any = body.get("umo")
        if not umo_value:
            raise business(400, MISSING_UMO)
        umo = parse_umo(str(umo_value))
        platform = platforms.running(umo.platform_id)
        if platform is None:
            raise business(404, NOT_RUNNING.format(umo.platform_id))
        lookups = Lookups(services.attachments, key_id, platform.reply_check(umo))
        message = await parse_message(body.get("message", {}), lookups)
        try:
            await platforms.send(platform, Outgoing(umo, message, key_id))
        except SendError as error:
            log.warning("sending to %s failed: %s", umo.platform_id, error)
            if services.metrics is not None:
                services.metrics.platform_error(umo.platform_id)
            raise business(502, SEND_FAILED.format(error)) from None
        finally:
            message.close()
        return json_ok({}, services.profile.envelope)

    return handle
