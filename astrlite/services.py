"""What endpoints may use: the domain services of a running server, never the database
itself (the store's connections stay behind these services)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
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

T = TypeVar("T")


class OnFirstUse(Generic[T]):
    """A service made by ``make`` when it is first asked for, for what an idle server does
    not need (the chat runner's modules cost tens of milliseconds of start-up)."""

    __slots__ = ("_made", "_make")

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._made: list[T] = []

    def __call__(self) -> T:
        if not self._made:
            self._made.append(self._make())
        return self._made[0]

    @property
    def made(self) -> T | None:
        """The service if it has been made; None otherwise (nothing is made here)."""
        return self._made[0] if self._made else None


@dataclass(frozen=True, slots=True)
class Services:
    options: Options
    configs: ConfigSet
    keys: KeyVerifier
    attachment_store: OnFirstUse[AttachmentStore]
    chat_service: OnFirstUse[ChatService]
    platforms: Platforms
    admins: AdminIds
    background: Background
    health: HealthProbe
    metrics: Metrics | None  # --metrics
    profile: Profile  # the AstrBot version spoken on the wire (--compat)

    # Made on first use: an idle server loads neither (their modules cost start-up time).
    @property
    def attachments(self) -> AttachmentStore:
        return self.attachment_store()

    @property
    def chat(self) -> ChatService:
        return self.chat_service()

    @property
    def sse_heartbeat(self) -> float | None:
        """Seconds of silence before a heartbeat (--sse-heartbeat, else the profile's);
        None: never (0)."""
        given = self.options.sse_heartbeat
        return (self.profile.sse_heartbeat if given is None else given) or None
