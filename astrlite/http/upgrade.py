"""Turning a request into a WebSocket: the handshake checked, the 101 prepared (W6).

A handler returns `websocket_response(request, session)`; the connection sends the 101
and runs `session` on a `WebSocketChannel`. A bad handshake raises the 400 envelope, or
426 with `Sec-WebSocket-Version: 13` for another version. No extension or subprotocol
is ever accepted, so the 101 names none.
"""

from __future__ import annotations

from astrlite.errors import ApiError
from astrlite.http import websocket as ws
from astrlite.http.request import Request
from astrlite.http.response import Response
from astrlite.http.websocket_channel import WebSocketSession

HANDSHAKE_WITH_BODY = "A WebSocket handshake must not have a body"


def websocket_response(request: Request, session: WebSocketSession) -> Response:
    result = ws.check_handshake(request.method.encode("ascii"), request.headers)
    if isinstance(result, ws.HandshakeError):
        version = ((b"sec-websocket-version", ws.VERSION.encode()),)
        raise ApiError(
            result.status, result.message, headers=version if result.status == 426 else ()
        )
    if request.content_length != 0:
        raise ApiError(400, HANDSHAKE_WITH_BODY, close=True)
    headers = [
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-accept", result.encode("ascii")),
    ]
    return Response(101, headers, websocket=session)
