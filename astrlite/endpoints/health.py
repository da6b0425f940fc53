"""GET /health (and HEAD): public, outside /api/v1, for load balancers and supervisors.

200 `{"status": "ok", "version", "uptime_seconds"}` when the store is usable; 503 with
`"status": "error"` and a `message` saying why otherwise.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from astrlite import __version__
from astrlite.http.request import Request
from astrlite.http.response import Response
from astrlite.http.router import Handler

if TYPE_CHECKING:
    from astrlite.services import Services


def get_health(services: Services) -> Handler:
    probe = services.health

    async def handle(request: Request) -> Response:
        problem = await probe.problem()
        body: dict[str, Any] = {"status": "ok" if problem is None else "error"}
        if problem is not None:
            body["message"] = problem
        body["version"] = __version__
        body["uptime_seconds"] = round(probe.uptime(), 3)
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        return Response(200 if problem is None else 503, headers, json.dumps(body).encode())

    return handle
