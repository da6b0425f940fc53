"""An `openai` provider entry, checked (README, Configuration): what start-up reads and
validates without loading the provider itself (providers/openai.py, loaded on the first
chat turn that uses it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrlite.outbound.entries import CONNECTION_KEYS, ConnectionSettings, Entry

DEFAULT_TIMEOUT = 60.0


KEYS = ("base_url", "api_key", "model", *CONNECTION_KEYS, "verify")
DEFAULT_CONNECTION = ConnectionSettings(DEFAULT_TIMEOUT, None, None)


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    id: str
    base_url: str
    model: str
    api_key: str = ""
    # timeout (for connecting and between reads), ca_file, proxy, verify
    connection: ConnectionSettings = DEFAULT_CONNECTION

    @classmethod
    def from_entry(cls, raw: Mapping[str, Any], data_dir: str | Path = ".") -> OpenAIConfig:
        """Validate a config entry; ValueError("<key>: <problem>") when it is wrong.

        A relative ca_file is taken relative to data_dir.
        """
        entry = Entry(raw, KEYS, "provider")
        return cls(
            id=entry.id,
            base_url=entry.url("base_url"),
            model=entry.text("model"),
            api_key=entry.token("api_key", required=False),
            connection=entry.connection(data_dir, DEFAULT_TIMEOUT),
        )
