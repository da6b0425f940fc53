"""Who a request acts for: the API key it authenticated with, and that key's scopes."""

from __future__ import annotations

from dataclasses import dataclass

from astrlite import scopes


@dataclass(frozen=True, slots=True)
class Principal:
    """The key a request authenticated with."""

    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scopes.grants(self.scopes, scope)
