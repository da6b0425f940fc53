"""What endpoints may use: the domain services of a running server, never the database
itself (the store's connections stay behind these services)."""

from __future__ import annotations

from dataclasses import dataclass

from astrlite.background import Background
from astrlite.chat.admins import AdminIds
from astrlite.chat.runner import ChatService
from astrlite.compat import Profile
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
    admins: AdminIds
    background: Background
    health: HealthProbe
    metrics: Metrics | None  # --metrics
    profile: Profile  # the AstrBot version spoken on the wire (--compat)

    @property
    def sse_heartbeat(self) -> float | None:
        """Seconds of silence before a heartbeat (--sse-heartbeat, else the profile's);
        None: never (0)."""
        given = self.options.sse_heartbeat
        return (self.profile.sse_heartbeat if given is None else given) or None
