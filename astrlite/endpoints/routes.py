"""The one routing table, assembled from the endpoint modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from astrlite.endpoints import chat, configs, files, im, openapi
from astrlite.http.router import Handler, RouteTable

if TYPE_CHECKING:
    from astrlite.runtime import Services


def build_table(services: Services) -> dict[str, dict[str, Handler]]:
    parts: list[RouteTable] = [
        openapi.routes(),
        chat.routes(services),
        configs.routes(services),
        im.routes(services),
        files.routes(services),
    ]
    table: dict[str, dict[str, Handler]] = {}
    for part in parts:
        for path, methods in part.items():
            table.setdefault(path, {}).update(methods)
    return table
