"""A running turn's output: its events go to the client's stream, and its bot rows to
history, at the save points of M6 (each followed by ``message_saved``).

Two writers share a turn: the provider's reply, and messages pushed into the live
stream by ``/api/v1/im/message`` (``offer``). A lock keeps each writer's batch of events
together on the wire and in the accumulators.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import anyio

from astrlite.background import Background
from astrlite.chat.accumulator import ReplyAccumulator
from astrlite.chat.events import (
    MEDIA_TAGS,
    attachment_saved_event,
    media_event,
    plain_event,
    proactive_complete_event,
)
from astrlite.chat.runs import COMPLETED, Run
from astrlite.chat.turn import Emit
from astrlite.compat import Profile
from astrlite.store.chat import ChatStore

PLAIN = "plain"


@dataclass(frozen=True, slots=True)
class ProactivePart:
    """One component of a message pushed into a live stream.

    ``kind`` is ``plain`` (``data`` is the text) or ``image``, ``record`` or ``file``
    (``data`` is the stored file name, ``AttachmentRow.stored_name``, and
    ``attachment_id`` the attachment holding it). Video has no stream event: the
    original's webchat never sends it, so leave video parts out.
    """

    kind: str
    data: str
    attachment_id: str | None = None
    filename: str | None = None  # a file's original name (shown under 4.27)


def check_parts(parts: Sequence[ProactivePart]) -> None:
    """ValueError unless there are parts and each is of a kind a stream can carry."""
    if not parts or any(p.kind != PLAIN and p.kind not in MEDIA_TAGS for p in parts):
        raise ValueError("a proactive message needs plain, image, record or file parts")


def proactive_emits(
    parts: Sequence[ProactivePart], message_id: str, *, display_names: bool = False
) -> list[Emit]:
    """The events of an injected message (docs/compatibility.md M12): one per part, all streaming,
    then the proactive ``complete`` carrying the last part's data. ``display_names``
    (Profile.file_display_names): a file event carries its original name too."""
    emits = []
    for part in parts:
        if part.kind == PLAIN:
            event = plain_event(part.data, streaming=True, message_id=message_id)
        else:
            display = part.filename if display_names else None
            event = media_event(
                part.kind, part.data, streaming=True, message_id=message_id, display_name=display
            )
        emits.append(Emit(event, part.attachment_id))
    last = str(emits[-1].event["data"])
    emits.append(Emit(proactive_complete_event(last, message_id=message_id)))
    return emits


class LiveTurn:
    __slots__ = (
        "_background",
        "_busy",
        "_closing",
        "_idle",
        "_offered",
        "_profile",
        "_reply",
        "_run",
        "_store",
        "message_id",
    )

    def __init__(
        self, run: Run, store: ChatStore, background: Background, *, profile: Profile
    ) -> None:
        self.message_id = run.run_id
        self._run = run
        self._profile = profile
        self._store = store
        self._background = background
        self._reply = ReplyAccumulator(arrival_order=profile.arrival_order)
        # The lock between the two writers. Not an anyio.Lock, which costs a deque and
        # two backend look-ups per batch: a flag, and an Event only while one waits.
        self._busy = False
        self._idle: anyio.Event | None = None
        self._offered: list[Sequence[ProactivePart]] = []
        self._closing = False

    def offer(self, parts: Sequence[ProactivePart]) -> bool:
        """Take a pushed message unless the reply is already ending (False: save it
        yourself). It is streamed and saved as its own row as soon as the reply's
        current batch of events is out."""
        if self._closing:
            return False
        self._offered.append(parts)
        self._background.start_soon(self._deliver_offered)
        return True

    async def publish(self, emits: Iterable[Emit]) -> None:
        """Send a batch of the reply's events and save its rows."""
        await self._acquire()
        try:
            await self._send_offered()
            await self._send(emits, self._reply)
        finally:
            self._release()

    async def finish(self, emits: Iterable[Emit], status: str = COMPLETED) -> None:
        """The reply's last batch (ending with ``end``); nothing is taken after it."""
        self._closing = True
        await self.publish(emits)
        self._run.finish(status)

    async def _acquire(self) -> None:
        """No checkpoint when free: a fast provider then fills the stream's buffer before
        the writer runs, so its events leave in few large socket writes. Waiters are
        woken together and the first to run takes the turn; whoever holds it first
        sends what was offered, so a pushed message still follows the batch it waited
        for."""
        while self._busy:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()
        self._busy = True

    def _release(self) -> None:
        self._busy = False
        idle, self._idle = self._idle, None
        if idle is not None:
            idle.set()

    async def _deliver_offered(self) -> None:
        await self._acquire()
        try:
            await self._send_offered()
        finally:
            self._release()

    async def _send_offered(self) -> None:
        while self._offered:
            parts = self._offered.pop(0)
            # Its own accumulator: a pushed message is saved as its own row, never mixed
            # with the text of the reply it interrupts.
            profile = self._profile
            emits = proactive_emits(
                parts, self.message_id, display_names=profile.file_display_names
            )
            await self._send(emits, ReplyAccumulator(arrival_order=profile.arrival_order))

    async def _send(self, emits: Iterable[Emit], accumulator: ReplyAccumulator) -> None:
        """Events ready together go out as one chunk; the events of a saved row wait for
        its write and leave with its ``message_saved`` (4.27: ``attachment_saved`` after
        each media)."""
        run = self._run
        run_events = self._profile.run_events and run.framing.shows_saves
        checkpoint = run.stored_checkpoint_id
        shown_checkpoint = checkpoint if run_events else None
        batch: list[Emit] = []
        for emit in emits:
            batch.append(emit)
            kind = emit.event["type"]
            if run_events and emit.attachment_id is not None and kind in MEDIA_TAGS:
                batch.append(Emit(attachment_saved_event(emit.attachment_id, kind)))
            row = accumulator.feed(emit.event, emit.attachment_id)
            if row is not None and emit.saved:
                row_id, created_at = await self._store.add_bot_row(run.session_id, row, checkpoint)
                framing = run.framing
                saved = framing.saved_event(row_id, created_at, run.session_id, shown_checkpoint)
                wire = framing.saved_wire(row_id, created_at, shown_checkpoint)
                batch.append(Emit(saved, wire=wire))
        if batch:
            await run.send(batch)
