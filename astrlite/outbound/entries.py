"""One provider or platform entry of a config file, read key by key: every problem is a ValueError
``<key>: <what is wrong>``, and an unknown key (a typo such as ``tokne``) is refused
rather than silently ignored."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrlite.outbound import HttpClientError
from astrlite.outbound.urls import parse_proxy, parse_url

# Checked by configs.py already.
COMMON_KEYS = frozenset({"id", "type", "enable"})
# Read by connection(), for the platforms that make requests.
CONNECTION_KEYS = ("timeout", "ca_file", "proxy")
# A bot API answers in well under a second; the margin covers a slow uplink. It bounds
# the connect and every wait for bytes, so a hung platform fails the send in this time.
DEFAULT_TIMEOUT = 30.0
# Tokens travel in URLs and headers: printable ASCII without spaces keeps them intact.
_TOKEN = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    timeout: float
    ca_file: str | None  # absolute, or relative to the working directory
    proxy: str | None
    verify: bool = True  # false: no TLS certificate check (the client logs a warning)

    @property
    def custom_tls_or_proxy(self) -> bool:
        return self.ca_file is not None or self.proxy is not None or not self.verify


class Entry:
    def __init__(self, raw: Mapping[str, Any], keys: Collection[str], kind: str = "platform"):
        allowed = COMMON_KEYS | set(keys)
        for key in raw:
            if key not in allowed:
                raise ValueError(f"{key}: unknown key for a {raw['type']} {kind}")
        self.raw = raw
        self.id: str = raw["id"]

    def text(self, key: str, default: str | None = None) -> str:
        """A string; required (non-empty) when there is no default."""
        value = self.raw.get(key, default)
        if not isinstance(value, str) or (default is None and not value):
            raise ValueError(f"{key}: expected a non-empty string")
        return value

    def token(self, key: str, *, required: bool) -> str:
        value = self.text(key, None if required else "")
        if value and not _TOKEN.fullmatch(value):
            raise ValueError(f"{key}: must be printable ASCII without spaces")
        return value

    def url(self, key: str, default: str | None = None) -> str:
        value = self.text(key, default).rstrip("/")

        try:
            parse_url(value)
        except HttpClientError as exc:
            raise ValueError(f"{key}: {exc}") from None
        return value

    def count(self, key: str, default: int) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key}: expected a whole number, 0 or more")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false")
        return value

    def connection(
        self, data_dir: Path | str, default_timeout: float = DEFAULT_TIMEOUT
    ) -> ConnectionSettings:
        """timeout, ca_file (relative to data_dir), proxy and, where allowed, verify."""
        timeout = self.raw.get("timeout", default_timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("timeout: expected a positive number of seconds")
        ca_file = self._optional_text("ca_file")
        proxy = self._optional_text("proxy")
        if proxy is not None:
            try:
                parse_proxy(proxy)
            except HttpClientError as exc:
                raise ValueError(f"proxy: {exc}") from None
        return ConnectionSettings(
            float(timeout),
            str(Path(data_dir, ca_file)) if ca_file else None,
            proxy,
            self.flag("verify", True),
        )

    def _optional_text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key}: expected a string or null")
        return value or None
