"""Scopes (astrlite.principal): every normalisation and error row of AstrBot 4.27's key
creation, and what a stored key's scopes grant."""

from __future__ import annotations

import pytest

from astrlite.principal import DEFAULT_SCOPES, VALID_SCOPES, ScopeError, grants, normalise

DEFAULTS = [
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
]


def test_the_defaults_in_their_order() -> None:
    assert list(DEFAULT_SCOPES) == DEFAULTS
    assert normalise(None) == DEFAULTS
    assert (*DEFAULTS, "chat:admin", "config:edit_admin") == VALID_SCOPES


@pytest.mark.parametrize(
    ("requested", "stored"),
    [
        (["config"], ["config", "bot", "provider"]),
        (["config", "config:edit_admin"], ["config", "config:edit_admin", "bot", "provider"]),
        (["provider", "config"], ["provider", "config", "bot"]),
        (["chat", "chat:admin"], ["chat", "chat:admin"]),
        (["chat:admin", "chat"], ["chat:admin", "chat"]),
        (["im", "im", "chat"], ["im", "chat"]),
        (["bot"], ["bot"]),  # no upward inclusion
        (["mcp", "skill"], ["mcp", "skill"]),
        (["file"], ["file"]),
        (["config", "bot"], ["config", "bot", "provider"]),
        (list(VALID_SCOPES), list(VALID_SCOPES)),
    ],
)
def test_normalisation(requested: list[str], stored: list[str]) -> None:
    assert normalise(requested) == stored


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        (["im", "bogus", "im", "*", "system"], "Invalid scopes: bogus, *, system"),
        (["bogus", "bogus"], "Invalid scopes: bogus, bogus"),  # duplicates kept
        (["*"], "Invalid scopes: *"),
        (["system"], "Invalid scopes: system"),
        (["tool", "skills", "kb"], "Invalid scopes: tool, skills, kb"),
        (["Chat"], "Invalid scopes: Chat"),
        # Unknown names come before the sub-scope rules.
        (["chat:admin", "bogus"], "Invalid scopes: bogus"),
        (["config:edit_admin"], "config:edit_admin requires the config scope"),
        (["chat:admin"], "chat:admin requires the chat scope"),
        # The config rule is checked first.
        (["chat:admin", "config:edit_admin"], "config:edit_admin requires the config scope"),
        (
            ["chat", "chat:admin", "config:edit_admin"],
            "config:edit_admin requires the config scope",
        ),
        (["config", "config:edit_admin", "chat:admin"], "chat:admin requires the chat scope"),
        ([], "At least one valid scope is required"),
    ],
)
def test_errors(requested: list[str], message: str) -> None:
    with pytest.raises(ScopeError) as raised:
        normalise(requested)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("held", "scope", "granted"),
    [
        (["config"], "bot", True),
        (["config"], "provider", True),
        (["config"], "config:edit_admin", False),  # sub-scopes are never implied
        (["chat"], "chat:admin", False),
        (["bot", "provider"], "config", False),
        (["*"], "chat:admin", True),
        (["*"], "config:edit_admin", True),
        (["*"], "file", True),
        (["chat", "chat:admin"], "chat:admin", True),
        (["im"], "chat", False),
        ([], "chat", False),
    ],
)
def test_what_a_key_may_use(held: list[str], scope: str, granted: bool) -> None:
    assert grants(frozenset(held), scope) is granted
