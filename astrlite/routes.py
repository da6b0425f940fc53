"""The one routing table, assembled from the endpoint modules."""

from __future__ import annotations

from .endpoints import openapi
from .routing import Handler


def build_table() -> dict[str, dict[str, Handler]]:
    table: dict[str, dict[str, Handler]] = {}
    for part in (openapi.routes(),):
        for path, methods in part.items():
            table.setdefault(path, {}).update(methods)
    return table
