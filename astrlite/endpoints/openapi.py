"""GET /api/v1/openapi.json: the published contract, public (no key needed)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from astrlite.http.request import Request
from astrlite.http.response import Response
from astrlite.http.router import RouteTable


@cache
def openapi_document() -> bytes:
    return resources.files("astrlite").joinpath("openapi.json").read_bytes()


async def get_openapi(request: Request) -> Response:
    return Response(200, [(b"content-type", b"application/json")], openapi_document())


def routes() -> RouteTable:
    return {"/api/v1/openapi.json": {"GET": get_openapi}}
