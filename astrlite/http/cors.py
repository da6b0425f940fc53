"""Cross-origin access for browser clients (`--cors-origins`), as pure functions.

Off by default: then no response carries a CORS header and OPTIONS behaves as before.
On, a preflight from an allowed origin is answered before authentication (browsers send
it without credentials), and every answer to an allowed origin names it.
"""

from __future__ import annotations

from dataclasses import dataclass

ALLOWED_HEADERS = b"X-API-Key, Authorization, Content-Type, Last-Event-ID, Range, If-None-Match"
# What a browser client reads beyond the CORS-safelisted headers: a download's name,
# size and range, its validator, and the hints that come with 405, 416 and 503.
EXPOSED_HEADERS = (
    b"Content-Disposition, Content-Length, Content-Range, Accept-Ranges, ETag, "
    b"Last-Modified, Allow, Retry-After"
)
# Browsers cap this anyway (Chromium: 2 h); ten minutes spares most repeat preflights.
PREFLIGHT_MAX_AGE = b"600"

Headers = list[tuple[bytes, bytes]]


class CorsError(ValueError):
    """A --cors-origins value that cannot be used."""


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    origins: frozenset[str]  # exact `scheme://host[:port]` values
    any_origin: bool = False

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def response_headers(self, origin: bytes | None) -> Headers:
        """Headers for an answer to a request carrying `Origin` (none when not allowed)."""
        if origin is None or not self.allows(origin.decode("latin-1")):
            return []
        headers = [
            (b"access-control-allow-origin", b"*" if self.any_origin else origin),
            (b"access-control-expose-headers", EXPOSED_HEADERS),
        ]
        if not self.any_origin:
            headers.append((b"vary", b"Origin"))
        return headers

    def preflight_headers(self, origin: bytes, allow: bytes) -> Headers:
        """Headers for a preflight from an allowed origin; `allow` is the path's methods."""
        return [
            *self.response_headers(origin),
            (b"access-control-allow-methods", allow),
            (b"access-control-allow-headers", ALLOWED_HEADERS),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
        ]


def parse_origins(text: str) -> CorsPolicy | None:
    """`*`, or a comma-separated list of origins such as `https://app.example.org`;
    empty means off (None)."""
    items = [item.strip().rstrip("/") for item in text.split(",") if item.strip()]
    if not items:
        return None
    if items == ["*"]:
        return CorsPolicy(frozenset(), any_origin=True)
    for item in items:
        scheme, sep, rest = item.partition("://")
        if item == "*" or not sep or scheme not in ("http", "https") or not rest:
            raise CorsError(f"expected * or origins such as https://app.example.org, got {item!r}")
        if "/" in rest:
            raise CorsError(
                f"an origin has no path: {item!r} (try {scheme}://{rest.split('/')[0]})"
            )
    return CorsPolicy(frozenset(items))


def is_preflight(method: str, origin: bytes | None, requested_method: bytes | None) -> bool:
    return method == "OPTIONS" and origin is not None and requested_method is not None
