"""What endpoints may use: the domain services of a running server, never the database
itself (the store's connections stay behind these services)."""

from __future__ import annotations

from dataclasses import dataclass

from astrlite.background import Background
from astrlite.chat.runner import ChatService
from astrlite.configs import ConfigSet
from astrlite.files.attachments import AttachmentStore
from astrlite.im.platforms import Platforms
from astrlite.operations.metrics import Metrics
from astrlite.options import Options
from astrlite.store.health import HealthProbe
from astrlite.store.keys import KeyVerifier


@dataclass(frozen=True, slots=True)
class Services:
    options: Options
    configs: ConfigSet
    keys: KeyVerifier
    attachments: AttachmentStore
    chat: ChatService
    platforms: Platforms
    background: Background
    health: HealthProbe
    metrics: Metrics | None  # --metrics
