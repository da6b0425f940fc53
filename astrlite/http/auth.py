"""API keys on the wire: carriers and their precedence, scopes (docs/compatibility.md M4).

Which scope a route needs is in its route table entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from astrlite.errors import ApiError
from astrlite.http.request import Request
from astrlite.principal import Principal

MISSING_KEY = "Missing API key"
INVALID_KEY = "Invalid API key"
INSUFFICIENT_SCOPE = "Insufficient API key scope"
QUERY_KEYS_DISABLED = "API keys in the query string are disabled"


KeyVerifier = Callable[[str], "Principal | None"]


@dataclass(frozen=True, slots=True)
class Carried:
    key: str  # already stripped; may be empty (a whitespace-only value wins, then is empty)
    from_query: bool


def find_key(request: Request, *, bearer_first: bool = False) -> Carried | None:
    """The first non-empty carrier, in AstrBot's precedence order: the seed's (query
    ``api_key``, ``key``, ``X-API-Key``, ``Authorization``), or with ``bearer_first``
    4.27's (``Authorization: Bearer`` alone decides, then ``ApiKey``, the query, the
    header)."""
    authorization = request.header(b"authorization")
    text = "" if authorization is None else authorization.decode("latin-1").strip()
    if bearer_first:
        for prefix in ("Bearer ", "ApiKey "):
            if text.startswith(prefix):
                return Carried(text[len(prefix) :].strip(), False)
    for name in ("api_key", "key"):
        value = request.query_value(name)
        if value:
            return Carried(value.strip(), True)
    header = request.header(b"x-api-key")
    if header:
        return Carried(header.decode("latin-1").strip(), False)
    if text and not bearer_first:
        for prefix in ("Bearer ", "ApiKey "):
            if text.startswith(prefix):
                return Carried(text[len(prefix) :].strip(), False)
    return None


def authenticate(
    request: Request, verify: KeyVerifier, *, allow_query: bool, bearer_first: bool = False
) -> Principal:
    carried = find_key(request, bearer_first=bearer_first)
    if carried is None or not carried.key:
        raise ApiError(401, MISSING_KEY)
    if carried.from_query and not allow_query:
        raise ApiError(401, QUERY_KEYS_DISABLED)
    principal = verify(carried.key)
    if principal is None:
        raise ApiError(401, INVALID_KEY)
    return principal


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.allows(scope):
        raise ApiError(403, INSUFFICIENT_SCOPE)
