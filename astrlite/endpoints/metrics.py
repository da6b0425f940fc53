"""GET /metrics (with --metrics): the Prometheus text format, no key needed.

A flag rather than a key scope: Prometheus scrapes without credentials by default, so
the endpoint is guarded like node_exporter's, by where it listens; a new scope would
also widen the scope vocabulary AstrBot clients know (chat, config, file, im).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from astrlite.http.request import Request
from astrlite.http.response import Response
from astrlite.http.router import Handler
from astrlite.operations.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from astrlite.services import Services


def get_metrics(services: Services) -> Handler | None:
    metrics = services.metrics
    if metrics is None:
        return None

    async def handle(request: Request) -> Response:
        return Response(200, [(b"content-type", CONTENT_TYPE)], metrics.render())

    return handle
