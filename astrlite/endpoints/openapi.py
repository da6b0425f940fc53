"""GET /api/v1/openapi.json: the published contract, public (no key needed)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from astrlite.http.request import Request
from astrlite.http.response import Response
from astrlite.http.router import Handler

if TYPE_CHECKING:
    from astrlite.services import Services


@cache
def openapi_document() -> bytes:
    # Imported here: importlib.resources pulls in tempfile, shutil, bz2 and lzma, start-up
    # time that only this endpoint needs.
    from importlib import resources

    return resources.files("astrlite").joinpath("openapi.json").read_bytes()


def get_openapi(services: Services) -> Handler:
    async def handle(request: Request) -> Response:
        return Response(200, [(b"content-type", b"application/json")], openapi_document())

    return handle
