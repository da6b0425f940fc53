"""The config files of the data directory (README, Configuration), read and validated at start-up.

`config.json` is the default config (id `default`); `configs/<id>.json` are more configs,
id = file stem. Every problem stops the start with the file and what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ID = "default"
DEFAULT_FILE = "config.json"
CONFIGS_DIR = "configs"
PROVIDER_TYPES = ("echo", "scripted", "openai")
PLATFORM_TYPES = ("telegram", "onebot", "webhook", "outbox")
WEBCHAT = "webchat"

DEFAULT_CONFIG: dict[str, Any] = {
    "name": "default",
    "provider": "echo",
    "providers": [{"id": "echo", "type": "echo"}],
    "streaming": False,
    "system_prompt": "You are a helpful assistant.",
    "context_turns": 10,
    "display_reasoning": False,
    "platforms": [],
}


class ConfigError(ValueError):
    """`<file>: <where>: <what is wrong>`."""


@dataclass(frozen=True, slots=True)
class Config:
    id: str
    name: str
    path: str  # relative to the data directory (F16)
    provider: str
    providers: tuple[dict[str, Any], ...]
    streaming: bool
    system_prompt: str
    context_turns: int
    display_reasoning: bool
    platforms: tuple[dict[str, Any], ...] = field(default=())
    # None: the file does not say (config.json then takes the profile's default).
    admins_id: tuple[str, ...] | None = None

    @property
    def is_default(self) -> bool:
        return self.id == DEFAULT_ID


@dataclass(frozen=True, slots=True)
class ConfigSet:
    extras: tuple[Config, ...]  # sorted by file name
    default: Config

    def listed(self) -> list[Config]:
        """The order of GET /api/v1/configs: extra configs by file name, default last."""
        return [*self.extras, self.default]

    def by_id(self, config_id: str) -> Config | None:
        return next((c for c in self.listed() if c.id == config_id), None)

    def by_name(self, name: str) -> list[Config]:
        return [c for c in self.listed() if c.name == name]


def _expect(kind: type | tuple[type, ...], label: str) -> Callable[[Any, str], Any]:
    def check(value: Any, where: str) -> Any:
        # bool is an int in Python; a config saying `"context_turns": true` is a mistake.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise ValueError(f"{where}: expected {label}")
        if not isinstance(value, kind):
            raise ValueError(f"{where}: expected {label}")
        return value

    return check


def _admin_ids(value: Any, where: str) -> list[Any]:
    """A list of ids; numbers are allowed (platform user ids often are) and compared
    as text."""
    if not isinstance(value, list) or any(
        isinstance(item, bool) or not isinstance(item, (str, int)) for item in value
    ):
        raise ValueError(f"{where}: expected a list of strings")
    return value


_TOP_LEVEL: dict[str, Callable[[Any, str], Any]] = {
    "name": _expect(str, "a string"),
    "provider": _expect(str, "a string"),
    "providers": _expect(list, "a list"),
    "streaming": _expect(bool, "true or false"),
    "system_prompt": _expect(str, "a string"),
    "context_turns": _expect(int, "a whole number"),
    "display_reasoning": _expect(bool, "true or false"),
    "platforms": _expect(list, "a list"),
    "admins_id": _admin_ids,
}

_PROVIDER_KEYS: dict[str, dict[str, tuple[Callable[[Any, str], Any], bool]]] = {
    # type -> key -> (check, required)
    "echo": {},
    "scripted": {"rules_file": (_expect(str, "a string"), True)},
    "openai": {
        "base_url": (_expect(str, "a string"), True),
        "api_key": (_expect(str, "a string"), False),
        "model": (_expect(str, "a string"), True),
        "timeout": (_expect((int, float), "a number"), False),
        "ca_file": (_expect((str, type(None)), "a string or null"), False),
        "proxy": (_expect((str, type(None)), "a string or null"), False),
        "verify": (_expect(bool, "true or false"), False),
    },
}


def _non_empty_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}.id: expected a non-empty string")
    return value.strip()


def _provider(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object")
    provider_id = _non_empty_id(entry.get("id"), where)
    kind = entry.get("type")
    if kind not in _PROVIDER_KEYS:
        raise ValueError(
            f"{where}.type: unknown provider type {kind!r} (use {', '.join(PROVIDER_TYPES)})"
        )
    for key, (check, required) in _PROVIDER_KEYS[kind].items():
        if key in entry:
            check(entry[key], f"{where}.{key}")
        elif required:
            raise ValueError(f"{where}: missing {key}")
    return {**entry, "id": provider_id}


def _platform(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object")
    platform_id = _non_empty_id(entry.get("id"), where)
    kind = entry.get("type")
    if kind not in PLATFORM_TYPES:
        raise ValueError(
            f"{where}.type: unknown platform type {kind!r} (use {', '.join(PLATFORM_TYPES)})"
        )
    enable = entry.get("enable", True)
    _expect(bool, "true or false")(enable, f"{where}.enable")
    return {**entry, "id": platform_id, "enable": enable}


def parse_config(raw: Any, config_id: str, path: str, *, allow_platforms: bool) -> Config:
    """Validate one parsed config file; ValueError names the key and the problem."""
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    for key, value in raw.items():
        if key not in _TOP_LEVEL:
            raise ValueError(f"{key}: unknown key")
        _TOP_LEVEL[key](value, key)
    if "platforms" in raw and not allow_platforms:
        raise ValueError("platforms: platforms are read from config.json only")
    merged = {**DEFAULT_CONFIG, "name": config_id, **raw}
    providers = [_provider(p, f"providers[{i}]") for i, p in enumerate(merged["providers"])]
    seen: set[str] = set()
    for i, entry in enumerate(providers):
        if entry["id"] in seen:
            raise ValueError(f"providers[{i}].id: duplicate provider id {entry['id']!r}")
        seen.add(entry["id"])
    if merged["provider"] not in seen:
        raise ValueError(f"provider: {merged['provider']!r} is not the id of any providers entry")
    if merged["context_turns"] < 0:
        raise ValueError("context_turns: must not be negative")
    platforms = [_platform(p, f"platforms[{i}]") for i, p in enumerate(merged["platforms"])]
    return Config(
        id=config_id,
        name=merged["name"].strip(),
        path=path,
        provider=merged["provider"],
        providers=tuple(providers),
        streaming=merged["streaming"],
        system_prompt=merged["system_prompt"],
        context_turns=merged["context_turns"],
        display_reasoning=merged["display_reasoning"],
        platforms=tuple(platforms),
        admins_id=tuple(str(i) for i in raw["admins_id"]) if "admins_id" in raw else None,
    )


def _load_file(file: Path, config_id: str, relative: str, *, allow_platforms: bool) -> Config:
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{relative}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{relative}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{relative}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    try:
        return parse_config(raw, config_id, relative, allow_platforms=allow_platforms)
    except ValueError as error:
        raise ConfigError(f"{relative}: {error}") from None


def first_config(admins_id: tuple[str, ...] = ()) -> dict[str, Any]:
    """What config.json holds on first run: the defaults and the profile's admin ids."""
    return {**DEFAULT_CONFIG, "admins_id": list(admins_id)}


def load(data_dir: Path, admins_id: tuple[str, ...] = ()) -> ConfigSet:
    """Read config.json (written by first_config() on first run) and configs/*.json."""
    default_file = data_dir / DEFAULT_FILE
    if not default_file.exists():
        text = json.dumps(first_config(admins_id), indent=2) + "\n"
        default_file.write_text(text, encoding="utf-8")
    default = _load_file(default_file, DEFAULT_ID, DEFAULT_FILE, allow_platforms=True)
    extras = []
    folder = data_dir / CONFIGS_DIR
    if folder.is_dir():
        for file in sorted(folder.glob("*.json")):
            relative = f"{CONFIGS_DIR}/{file.name}"
            if file.stem == DEFAULT_ID:
                raise ConfigError(f"{relative}: the id 'default' belongs to {DEFAULT_FILE}")
            extras.append(_load_file(file, file.stem, relative, allow_platforms=False))
    return ConfigSet(tuple(extras), default)


def bot_ids(config: Config) -> list[str]:
    """GET /api/v1/im/bots: platform ids in config order, de-duplicated, disabled ones
    included, never the built-in webchat (docs/compatibility.md M12)."""
    ids: list[str] = []
    for platform in config.platforms:
        if platform["id"] != WEBCHAT and platform["id"] not in ids:
            ids.append(platform["id"])
    return ids
