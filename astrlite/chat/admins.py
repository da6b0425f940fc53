"""Admin ids (`admins_id`): names a key may chat as only with `chat:admin`, changed only
with `config:edit_admin` (AstrBot 4.27, in both profiles).

Every config may list admin ids; a name listed in any of them is reserved. The default
config's list can change while the server runs (PUT /api/v1/system-config), so it is
kept here rather than in the frozen `Config`, and saved back to config.json.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from astrlite import sources
from astrlite.configs import DEFAULT_FILE, ConfigSet
from astrlite.errors import ApiError, business
from astrlite.principal import CHAT_ADMIN, Principal

RESERVED = "username is reserved for an AstrBot administrator"
CANNOT_SAVE = "Cannot save config.json: {}"


class AdminIds:
    def __init__(self, default: Iterable[str], others: Iterable[str], config_file: Path) -> None:
        self._default = tuple(default)
        self._others = frozenset(others)
        self._reserved = self._others | frozenset(self._default)
        self._config_file = config_file
        self._saving = anyio.Lock()

    @classmethod
    def of(cls, configs: ConfigSet, profile_default: tuple[str, ...], data_dir: Path) -> AdminIds:
        """The admin ids of every config; config.json without `admins_id` takes the
        profile's default, another config without it reserves nothing more."""
        default = configs.default.admins_id
        others = (i for c in configs.extras for i in (c.admins_id or ()))
        return cls(profile_default if default is None else default, others, data_dir / DEFAULT_FILE)

    @property
    def default(self) -> list[str]:
        """The default config's list, as GET /api/v1/system-config shows it."""
        return list(self._default)

    def reserved(self, username: str) -> bool:
        """Exact comparison, as AstrBot: `"Astrbot"` is not `"astrbot"`."""
        return username in self._reserved

    async def replace_default(self, admins_id: list[str]) -> None:
        """Save a new list into config.json (other keys untouched), then use it."""
        async with self._saving:
            await anyio.to_thread.run_sync(_save, self._config_file, admins_id)
            self._default = tuple(admins_id)
            self._reserved = self._others | frozenset(self._default)


def guard_username(username: str, principal: Principal, admins: AdminIds) -> None:
    """Refuse a stripped chat `username` that is an admin id unless the key holds
    `chat:admin` (or `*`). Used by POST /api/v1/chat and the WebSocket `send`; the
    error's message is what both answer."""
    if admins.reserved(username) and not principal.allows(CHAT_ADMIN):
        raise business(403, RESERVED)


def _save(config_file: Path, admins_id: list[str]) -> None:
    try:
        mode = stat.S_IMODE(config_file.stat().st_mode)
        current: Any = json.loads(config_file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ApiError(500, CANNOT_SAVE.format(error.strerror)) from None
    except ValueError:  # edited by hand since the start into something else
        raise ApiError(500, CANNOT_SAVE.format("it is no longer a JSON object")) from None
    if not isinstance(current, dict):
        raise ApiError(500, CANNOT_SAVE.format("it is no longer a JSON object"))
    current["admins_id"] = admins_id
    temporary = config_file.with_name(f".{config_file.name}.{sources.new_hex()}.tmp")
    try:
        temporary.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n", "utf-8")
        os.chmod(temporary, mode)  # the file may hold tokens: keep who may read it
        os.replace(temporary, config_file)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ApiError(500, CANNOT_SAVE.format(error.strerror)) from None
