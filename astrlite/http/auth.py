"""API keys on the wire: carriers and their precedence (the profile's order), scopes
(docs/compatibility.md M4).

Which scope a route needs is in its route table entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from astrlite import compat
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


def _query(name: str) -> Callable[[Request], Carried | None]:
    def carried(request: Request) -> Carried | None:
        value = request.query_value(name)
        return Carried(value.strip(), True) if value else None

    return carried


def _authorization(prefix: str) -> Callable[[Request], Carried | None]:
    def carried(request: Request) -> Carried | None:
        header = request.header(b"authorization")
        text = "" if header is None else header.decode("latin-1").strip()
        return Carried(text[len(prefix) :].strip(), False) if text.startswith(prefix) else None

    return carried


def _x_api_key(request: Request) -> Carried | None:
    header = request.header(b"x-api-key")
    return Carried(header.decode("latin-1").strip(), False) if header else None


CARRIERS: dict[str, Callable[[Request], Carried | None]] = {
    compat.QUERY_API_KEY: _query("api_key"),
    compat.QUERY_KEY: _query("key"),
    compat.X_API_KEY: _x_api_key,
    compat.BEARER: _authorization("Bearer "),
    compat.APIKEY: _authorization("ApiKey "),
}


def find_key(request: Request, order: tuple[str, ...] = compat.SEED.key_carriers) -> Carried | None:
    """The first non-empty carrier, in the profile's order."""
    for name in order:
        carried = CARRIERS[name](request)
        if carried is not None:
            return carried
    return None


def authenticate(
    request: Request,
    verify: KeyVerifier,
    *,
    allow_query: bool,
    carriers: tuple[str, ...] = compat.SEED.key_carriers,
) -> Principal:
    carried = find_key(request, carriers)
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
