"""What `astrlite serve` prints once it listens: where, which data, which configs,
providers and platforms, so an operator sees at a glance what this instance will do.
Never a key, a token or a URL (which may carry credentials)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from astrlite import __version__

if TYPE_CHECKING:
    from astrlite.services import Services


def _provider(entry: dict[str, Any], default: str) -> str:
    details = [entry["type"]]
    if entry.get("model"):
        details.append(f"model {entry['model']}")
    if entry["id"] == default:
        details.append("default")
    return f"{entry['id']} ({', '.join(details)})"


def _platform(entry: dict[str, Any]) -> str:
    state = "" if entry["enable"] else ", disabled"
    return f"{entry['id']} ({entry['type']}{state})"


def lines(services: Services, data_dir: Path, url: str) -> list[str]:
    options = services.options
    out = [
        f"astrlite {__version__} listening on {url}",
        f"data directory: {data_dir.resolve()}",
    ]
    for config in services.configs.listed():
        providers = ", ".join(_provider(entry, config.provider) for entry in config.providers)
        out.append(f"config {config.id} ({config.path}): providers {providers}")
    platforms = ["webchat (built in)", *map(_platform, services.configs.default.platforms)]
    out.append("platforms: " + ", ".join(platforms))
    extras = [f"health {url}/health"]
    if options.metrics:
        extras.append(f"metrics {url}/metrics")
    if options.cors_origins:
        extras.append(f"cors {options.cors_origins}")
    out.append("; ".join(extras))
    return out
