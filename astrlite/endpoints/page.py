"""The built-in chat page (F22): ``GET /`` and its script, style sheet and icon (public).

The files live in the ``astrlite.page`` package and are read once with
``importlib.resources``, so they are served from inside the ``.pyz`` too. The page is a
client of the public API like any other: it holds no privilege, and the key it asks for
stays in the browser's ``sessionStorage``. ``--no-page`` leaves these routes out (404).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from astrlite.http.request import Request
from astrlite.http.response import Headers, Response
from astrlite.http.router import Handler

if TYPE_CHECKING:
    from astrlite.services import Services

# path -> (file in astrlite/page, content type)
ASSETS = {
    "/": ("index.html", b"text/html; charset=utf-8"),
    "/page.js": ("page.js", b"text/javascript; charset=utf-8"),
    "/page.css": ("page.css", b"text/css; charset=utf-8"),
    "/page.svg": ("page.svg", b"image/svg+xml"),
}

# Everything from this origin only, no inline script or style, no plugins, no framing;
# `blob:` images are the attachments the page downloads with the key.
CONTENT_SECURITY_POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    b"frame-ancestors 'none'"
)
SECURITY_HEADERS: Headers = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# Revalidate every time (a 304 costs one round trip), so an upgraded server's page is
# never mixed with a cached script of the old one.
CACHE_CONTROL = b"no-cache"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: bytes
    etag: str


@cache
def load(filename: str, content_type: bytes) -> Asset:
    from importlib import resources  # only when the page is asked for: ~10 ms of start-up

    body = resources.files("astrlite.page").joinpath(filename).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, content_type, etag)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    from astrlite.files.ranges import etag_matches  # loaded on the first revalidation

    return etag_matches(if_none_match, etag)


def respond(request: Request, file: Asset) -> Response:
    validators: Headers = [(b"etag", file.etag.encode()), (b"cache-control", CACHE_CONTROL)]
    if_none_match = request.header(b"if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match.decode("latin-1"), file.etag):
        return Response(304, [*validators, *SECURITY_HEADERS])
    headers: Headers = [(b"content-type", file.content_type), *validators, *SECURITY_HEADERS]
    return Response(200, headers, file.body)


def asset(path: str) -> Callable[[Services], Handler | None]:
    """The route table's factory for one of the page's files (None with --no-page)."""
    filename, content_type = ASSETS[path]

    def factory(services: Services) -> Handler | None:
        if services.options.no_page:
            return None

        async def get_asset(request: Request) -> Response:
            return respond(request, load(filename, content_type))  # read once, when asked

        return get_asset

    return factory
