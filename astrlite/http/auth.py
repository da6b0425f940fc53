"""API keys on the wire: carriers and their precedence (observed §2.2), scopes (§2.5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from astrlite.errors import ApiError
from astrlite.http.request import Request

SCOPES = ("chat", "config", "file", "im")
WILDCARD = "*"

# Exact path -> required scope; a path not listed needs only a valid key (observed §2.3).
ROUTE_SCOPES = {
    "/api/v1/chat": "chat",
    "/api/v1/chat/ws": "chat",
    "/api/v1/chat/sessions": "chat",
    "/api/v1/configs": "config",
    "/api/v1/file": "file",
    "/api/v1/im/message": "im",
    "/api/v1/im/bots": "im",
    "/api/v1/im/outbox": "im",
}

MISSING_KEY = "Missing API key"
INVALID_KEY = "Invalid API key"
INSUFFICIENT_SCOPE = "Insufficient API key scope"
QUERY_KEYS_DISABLED = "API keys in the query string are disabled"


@dataclass(frozen=True, slots=True)
class Principal:
    """The key a request authenticated with."""

    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return WILDCARD in self.scopes or scope in self.scopes


KeyVerifier = Callable[[str], "Principal | None"]


@dataclass(frozen=True, slots=True)
class Carried:
    key: str  # already stripped; may be empty (a whitespace-only value wins, then is empty)
    from_query: bool


def find_key(request: Request) -> Carried | None:
    """The first non-empty carrier, in AstrBot's precedence order."""
    for name in ("api_key", "key"):
        value = request.query_value(name)
        if value:
            return Carried(value.strip(), True)
    header = request.header(b"x-api-key")
    if header:
        return Carried(header.decode("latin-1").strip(), False)
    authorization = request.header(b"authorization")
    if authorization:
        text = authorization.decode("latin-1").strip()
        for prefix in ("Bearer ", "ApiKey "):
            if text.startswith(prefix):
                return Carried(text[len(prefix) :].strip(), False)
    return None


def authenticate(request: Request, verify: KeyVerifier, *, allow_query: bool) -> Principal:
    carried = find_key(request)
    if carried is None or not carried.key:
        raise ApiError(401, MISSING_KEY)
    if carried.from_query and not allow_query:
        raise ApiError(401, QUERY_KEYS_DISABLED)
    principal = verify(carried.key)
    if principal is None:
        raise ApiError(401, INVALID_KEY)
    scope = ROUTE_SCOPES.get(request.path)
    if scope is not None and not principal.allows(scope):
        raise ApiError(403, INSUFFICIENT_SCOPE)
    return principal
