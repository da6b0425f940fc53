"""The providers of every config, checked once at start-up from their ``providers``
entries and made on first use.

Checking reads scripted rules files and TLS settings, so a broken entry stops the start
with the config file and the problem instead of failing a chat later. Making an
``openai`` or ``echo`` provider waits for the first turn that asks for it: an idle server
does not load the provider modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astrlite.configs import Config, ConfigSet

if TYPE_CHECKING:
    from astrlite.outbound.registry import ClientRegistry
    from astrlite.providers.base import Provider

ClientsFactory = Callable[[], "ClientRegistry"]
Maker = Callable[[], "Provider"]
# Checks an entry (ValueError with the problem) and says how to make its provider.
Builder = Callable[[Mapping[str, Any], Path, ClientsFactory], Maker]


def _echo(entry: Mapping[str, Any], data_dir: Path, clients: ClientsFactory) -> Maker:
    provider_id = entry["id"]

    def make() -> Provider:
        from astrlite.providers.echo import EchoProvider

        return EchoProvider(provider_id)

    return make


def _scripted(entry: Mapping[str, Any], data_dir: Path, clients: ClientsFactory) -> Maker:
    from astrlite.providers.scripted import ScriptedProvider  # loaded only when configured

    provider = ScriptedProvider.from_file(entry["id"], entry["rules_file"], data_dir)
    return lambda: provider


def _openai(entry: Mapping[str, Any], data_dir: Path, clients: ClientsFactory) -> Maker:
    from astrlite.providers.openai_config import OpenAIConfig

    config = OpenAIConfig.from_entry(entry, data_dir)
    client = clients().client_for(config.connection)  # loads a custom ca_file now

    def make() -> Provider:
        # The provider's module, the HTTP client and ssl load on the first turn.
        from astrlite.providers.openai import OpenAIProvider

        return OpenAIProvider(config, client)

    return make


BUILDERS: Mapping[str, Builder] = {
    "echo": _echo,
    "scripted": _scripted,
    "openai": _openai,
}


class ProviderSet:
    def __init__(self, by_config: Mapping[str, Mapping[str, Maker]]) -> None:
        self._makers = by_config
        self._made: dict[tuple[str, str], Provider] = {}

    @classmethod
    def build(cls, configs: ConfigSet, data_dir: Path, clients: ClientsFactory) -> ProviderSet:
        """ValueError ``<config file>: providers[i]: <problem>`` for an entry that fails."""
        return cls(
            {config.id: _build_config(config, data_dir, clients) for config in configs.listed()}
        )

    def get(self, config_id: str, provider_id: str) -> Provider | None:
        made = self._made.get((config_id, provider_id))
        if made is None:
            maker = self._makers.get(config_id, {}).get(provider_id)
            if maker is None:
                return None
            made = self._made[config_id, provider_id] = maker()
        return made


def _build_config(config: Config, data_dir: Path, clients: ClientsFactory) -> dict[str, Maker]:
    built: dict[str, Maker] = {}
    for index, entry in enumerate(config.providers):
        try:
            built[entry["id"]] = BUILDERS[entry["type"]](entry, data_dir, clients)
        except ValueError as error:
            raise ValueError(f"{config.path}: providers[{index}]: {error}") from None
    return built
