"""What endpoints may use: the domain services of a running server, never the database
itself (the store's connections stay behind these services)."""

from __future__ import annotations

from dataclasses import dataclass

from astrlite.background import Background
from astrlite.chat.admins import AdminIds
from astrlite.chat.runner import ChatService
from astrlite.configs import ConfigSet
from astrlite.files.attachments import AttachmentStore
from astrlite.im.platforms import Platforms
from astrlite.options import Options
from astrlite.store.keys import KeyVerifier


@dataclass(frozen=True, slots=True)
class Services:
    options: Options
    configs: ConfigSet
    keys: KeyVerifier
    attachments: AttachmentStore
    chat: ChatService
    platforms: Platforms
    admins: AdminIds
    background: Background
