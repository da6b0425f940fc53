"""The platforms a server sends to: the built-in webchat, and the enabled entries of the
default config's ``platforms`` (README, Configuration), built once at start-up.

Building checks every enabled entry, so a broken one stops the start with the config
file and the problem instead of failing a send later. A disabled entry is not running
(sends to it are refused like sends to an unknown id) and not checked, so a platform
can be switched off while half set up. The first entry with an id wins, as in
``/im/bots``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astrlite.configs import WEBCHAT, Config
from astrlite.im.outbox import OutboxLog, OutboxPlatform

if TYPE_CHECKING:
    from astrlite.chat.runner import ChatService
    from astrlite.im.base import Outgoing, Platform
    from astrlite.outbound.registry import ClientRegistry

OUTBOX = "outbox"

# The HTTP client (and ssl) load only when a platform that talks HTTP is configured:
# a server without one starts faster and smaller.
ClientsFactory = Callable[[], "ClientRegistry"]
Builder = Callable[[Mapping[str, Any], Path, ClientsFactory, OutboxLog], "Platform"]


def _telegram(
    raw: Mapping[str, Any], data_dir: Path, clients: ClientsFactory, log: OutboxLog
) -> Platform:
    from astrlite.im.telegram import TelegramPlatform

    return TelegramPlatform.from_entry(raw, data_dir, clients())


def _onebot(
    raw: Mapping[str, Any], data_dir: Path, clients: ClientsFactory, log: OutboxLog
) -> Platform:
    from astrlite.im.onebot import OneBotPlatform

    return OneBotPlatform.from_entry(raw, data_dir, clients())


def _webhook(
    raw: Mapping[str, Any], data_dir: Path, clients: ClientsFactory, log: OutboxLog
) -> Platform:
    from astrlite.im.webhook import WebhookPlatform

    return WebhookPlatform.from_entry(raw, data_dir, clients())


BUILDERS: Mapping[str, Builder] = {
    "telegram": _telegram,
    "onebot": _onebot,
    "webhook": _webhook,
    OUTBOX: lambda raw, data_dir, clients, log: OutboxPlatform.from_entry(raw, log),
}


class Platforms:
    def __init__(
        self,
        running: Mapping[str, Platform],
        outbox_ids: frozenset[str],
        outbox: OutboxLog,
        chat: Callable[[], ChatService],
    ) -> None:
        self._running = running
        self.outbox_ids = outbox_ids  # configured outbox platforms, enabled or not
        self.outbox = outbox  # what every running outbox platform recorded
        self._chat = chat
        self._webchat: list[Platform] = []

    @classmethod
    def build(
        cls,
        config: Config,
        data_dir: Path,
        chat: Callable[[], ChatService],
        clients: ClientsFactory,
    ) -> Platforms:
        """ValueError ``<config file>: platforms[i]: <problem>`` for an entry that fails.
        ``chat``: the chat service, asked for on the first send to the web chat."""
        running: dict[str, Platform] = {}
        outbox_ids: set[str] = set()
        seen: set[str] = set()
        log = OutboxLog()
        for index, raw in enumerate(config.platforms):
            where = f"{config.path}: platforms[{index}]"
            platform_id = raw["id"]
            if platform_id == WEBCHAT:
                raise ValueError(f"{where}.id: 'webchat' is the built-in web chat")
            if platform_id in seen:
                continue
            seen.add(platform_id)
            if raw["type"] == OUTBOX:
                outbox_ids.add(platform_id)
            if not raw["enable"]:
                continue
            try:
                running[platform_id] = BUILDERS[raw["type"]](raw, data_dir, clients, log)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
        return cls(running, frozenset(outbox_ids), log, chat)

    def running(self, platform_id: str) -> Platform | None:
        if platform_id == WEBCHAT:
            return self.webchat()
        return self._running.get(platform_id)

    def webchat(self) -> Platform:
        """The built-in web chat, made on its first send (it needs the chat runner, which
        an idle server does not load)."""
        if not self._webchat:
            from astrlite.im.webchat import WebchatPlatform

            self._webchat.append(WebchatPlatform(self._chat()))
        return self._webchat[0]

    async def send(self, platform: Platform, outgoing: Outgoing) -> None:
        """Send through a running platform (SendError when it fails)."""
        await platform.send(outgoing)
