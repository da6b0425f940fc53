"""Who a request acts for: the API key it authenticated with and that key's scopes; the
scope names, what each includes, and the normalisation a new key's scopes go through
(AstrBot 4.27's rules, in both profiles)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

# What a key gets when no scopes are asked for, in this order.
DEFAULT_SCOPES = (
    "bot",
    "provider",
    "persona",
    "im",
    "config",
    "chat",
    "data",
    "file",
    "plugin",
    "mcp",
    "skill",
)
CHAT_ADMIN = "chat:admin"  # may chat as a configured admin id
CONFIG_EDIT_ADMIN = "config:edit_admin"  # may change admins_id
SUB_SCOPES = (CHAT_ADMIN, CONFIG_EDIT_ADMIN)  # never implied by another scope
VALID_SCOPES = DEFAULT_SCOPES + SUB_SCOPES  # every name a new key may ask for
# Honoured on a stored key (static keys have it) but never given to a new one.
WILDCARD = "*"
# A scope and the narrower ones it includes; only `config` includes others.
INCLUDES: dict[str, tuple[str, ...]] = {"config": ("bot", "provider")}
# Each sub-scope needs its parent; checked in this order (config first, as AstrBot).
PARENTS = ((CONFIG_EDIT_ADMIN, "config"), (CHAT_ADMIN, "chat"))

INVALID_SCOPES = "Invalid scopes: {}"
REQUIRES_PARENT = "{} requires the {} scope"
NO_SCOPE = "At least one valid scope is required"


class ScopeError(ValueError):
    """Scopes a new key cannot have; the message is AstrBot's."""


def normalise(requested: Sequence[str] | None) -> list[str]:
    """The scopes stored for a new key asking for `requested` (None: the defaults).

    Unknown names are refused together, in request order, duplicates kept; a sub-scope
    needs its parent; `config` brings `bot` and `provider`; duplicates are dropped,
    keeping the first occurrence.
    """
    if requested is None:
        return list(DEFAULT_SCOPES)
    invalid = [name for name in requested if name not in VALID_SCOPES]
    if invalid:
        raise ScopeError(INVALID_SCOPES.format(", ".join(invalid)))
    for sub_scope, parent in PARENTS:
        if sub_scope in requested and parent not in requested:
            raise ScopeError(REQUIRES_PARENT.format(sub_scope, parent))
    expanded = [*requested]
    for name in requested:
        expanded.extend(INCLUDES.get(name, ()))
    normalised = list(dict.fromkeys(expanded))
    if not normalised:
        raise ScopeError(NO_SCOPE)
    return normalised


def grants(held: Collection[str], scope: str) -> bool:
    """Whether a key holding `held` may use `scope`: `*`, the scope itself, or a scope
    that includes it."""
    if WILDCARD in held or scope in held:
        return True
    return any(scope in INCLUDES.get(name, ()) for name in held)


@dataclass(frozen=True, slots=True)
class Principal:
    """The key a request authenticated with."""

    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return grants(self.scopes, scope)
