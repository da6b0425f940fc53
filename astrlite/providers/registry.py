"""The providers of every config, built once at start-up from their ``providers`` entries.

Building reads scripted rules files and TLS settings, so a broken entry stops the start
with the config file and the problem instead of failing a chat later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astrlite.configs import Config, ConfigSet
from astrlite.providers.base import Provider
from astrlite.providers.echo import EchoProvider

if TYPE_CHECKING:
    from astrlite.outbound.registry import ClientRegistry

ClientsFactory = Callable[[], "ClientRegistry"]
Builder = Callable[[Mapping[str, Any], Path, ClientsFactory], Provider]


def _scripted(entry: Mapping[str, Any], data_dir: Path, clients: ClientsFactory) -> Provider:
    from astrlite.providers.scripted import ScriptedProvider  # loaded only when configured

    return ScriptedProvider.from_file(entry["id"], entry["rules_file"], data_dir)


def _openai(entry: Mapping[str, Any], data_dir: Path, clients: ClientsFactory) -> Provider:
    # Loaded only when configured: the HTTP client and ssl cost start-up time and memory.
    from astrlite.providers.openai import OpenAIProvider

    return OpenAIProvider.from_entry(entry, data_dir, clients())


BUILDERS: Mapping[str, Builder] = {
    "echo": lambda entry, data_dir, clients: EchoProvider(entry["id"]),
    "scripted": _scripted,
    "openai": _openai,
}


class ProviderSet:
    def __init__(self, by_config: Mapping[str, Mapping[str, Provider]]) -> None:
        self._by_config = by_config

    @classmethod
    def build(cls, configs: ConfigSet, data_dir: Path, clients: ClientsFactory) -> ProviderSet:
        """ValueError ``<config file>: providers[i]: <problem>`` for an entry that fails."""
        return cls(
            {config.id: _build_config(config, data_dir, clients) for config in configs.listed()}
        )

    def get(self, config_id: str, provider_id: str) -> Provider | None:
        return self._by_config.get(config_id, {}).get(provider_id)


def _build_config(config: Config, data_dir: Path, clients: ClientsFactory) -> dict[str, Provider]:
    built: dict[str, Provider] = {}
    for index, entry in enumerate(config.providers):
        try:
            built[entry["id"]] = BUILDERS[entry["type"]](entry, data_dir, clients)
        except ValueError as error:
            raise ValueError(f"{config.path}: providers[{index}]: {error}") from None
    return built
