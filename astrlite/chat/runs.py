"""A chat turn as a run (docs/compatibility.md R1, R2): its events fan out to the stream of the
request that started it and to any number of resumed streams.

The run is independent of every connection. The starting request's stream is the
primary: the run waits for it when it is full (backpressure, as a turn always has),
and a primary that has gone costs nothing (F5). A resumed stream is a follower: it
starts with a ``run_snapshot`` of everything the run has shown so far, then gets
every later event exactly once; a follower whose buffer fills is cut (its stream ends,
it may resume) so that no reader can hold the run up.

``revision`` counts the run's events from ``run_started`` on (the snapshot's revision
is the last event it includes); the events before it (``session_id``,
``user_message_saved``) are not replayed.
"""

from __future__ import annotations

import marshal
from collections.abc import Sequence
from typing import Any, NamedTuple

import anyio

from astrlite.chat.events import (
    CHAIN_REASONING,
    MEDIA_TAGS,
    end_event,
    media_part,
    run_snapshot_event,
)
from astrlite.chat.framing import Framing
from astrlite.chat.stream import EventStream
from astrlite.chat.turn import Emit
from astrlite.sse import encode_event

# A follower may fall this many chunks behind before it is cut (AstrBot: 256 events).
FOLLOWER_BUFFER_CHUNKS = 256
RUNNING, QUEUED, COMPLETED, STOPPED = "running", "queued", "completed", "stopped"


class DisplayContent:
    """What a run has shown: its text, media, reasoning and stats, as one bot message
    (including parts already saved as rows of their own)."""

    __slots__ = ("_agent_stats", "_open_text", "_parts", "_reasoning")

    def __init__(self) -> None:
        # Pieces, joined only when shown: a long streamed reply stays linear.
        self._parts: list[dict[str, Any] | list[str]] = []
        self._open_text: list[str] | None = None  # the plain part deltas extend
        self._reasoning: list[str] = []
        self._agent_stats: dict[str, Any] | None = None

    def feed(self, event: dict[str, Any], attachment_id: str | None) -> None:
        kind = event.get("type")
        if kind == "plain":
            chain_type = event.get("chain_type")
            if chain_type == CHAIN_REASONING:
                self._reasoning.append(str(event["data"]))
            elif chain_type is None:
                self._add_text(str(event["data"]), bool(event.get("streaming")))
        elif kind in MEDIA_TAGS and attachment_id is not None:
            self._parts.append(media_part(event, attachment_id))
            self._open_text = None
        elif kind == "agent_stats":
            self._agent_stats = dict(event["data"])

    def _add_text(self, text: str, streaming: bool) -> None:
        if streaming and self._open_text is not None:
            self._open_text.append(text)
            return
        pieces = [text]
        self._parts.append(pieces)
        self._open_text = pieces if streaming else None

    def value(self) -> dict[str, Any]:
        message = [
            {"type": "plain", "text": "".join(part)} if isinstance(part, list) else dict(part)
            for part in self._parts
        ]
        content: dict[str, Any] = {"type": "bot", "message": message}
        if self._reasoning:
            content["reasoning"] = "".join(self._reasoning)
        if self._agent_stats is not None:
            content["agent_stats"] = self._agent_stats
        return content


class Run:
    __slots__ = (
        "_content",
        "_done",
        "_finished",
        "_followers",
        "_primary",
        "checkpoint_id",
        "framing",
        "owner",
        "revision",
        "run_id",
        "session_id",
        "status",
    )

    def __init__(
        self,
        run_id: str,
        session_id: str,
        owner: str,
        checkpoint_id: str,
        primary: EventStream,
        framing: Framing,
    ) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.owner = owner  # the session's creator (the turn's username)
        self.checkpoint_id = checkpoint_id
        self._primary: EventStream | None = primary
        self.framing = framing  # how the events are encoded (SSE, or WebSocket frames)
        self.status = QUEUED
        self.revision = 0
        self._finished = False
        # Made only when someone waits: a run lives as long as its stream, and 1,000
        # open streams must stay cheap.
        self._done: anyio.Event | None = None
        self._content = DisplayContent()
        self._followers: list[EventStream] | None = None  # made for the first follower

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def stored_checkpoint_id(self) -> str | None:
        """The checkpoint id its history rows keep: none for a client that is shown no
        saves (4.27's WebSocket rows have a NULL ``llm_checkpoint_id``)."""
        return self.checkpoint_id if self.framing.shows_saves else None

    async def wait_done(self) -> None:
        if not self._finished:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()

    def state(self) -> dict[str, Any]:
        """The run as ``active_runs`` and ``run_snapshot`` show it."""
        return {
            "run_id": self.run_id,
            "session_id": self.session_id,
            "llm_checkpoint_id": self.checkpoint_id,
            "status": self.status,
            "revision": self.revision,
            "content": self._content.value(),
        }

    async def send(self, emits: Sequence[Emit], *, replayed: bool = True) -> None:
        """Send events ready together as one chunk to every stream. ``replayed``: the
        events count as revisions and are shown in snapshots. Nothing is taken once the
        run has finished."""
        primary = self._primary
        if primary is None:
            return
        framing = self.framing
        chunks = []
        for emit in emits:
            # An SSE delta comes encoded already (Emit.wire): the same bytes, cheaper.
            wire = emit.wire if framing.sse else None
            chunks.append(framing.encode(emit.event) if wire is None else wire)
            if replayed:
                self.revision += 1
                self._content.feed(emit.event, emit.attachment_id)
        data = b"".join(chunks)
        if self._followers:  # only SSE runs are followed (ChatService.run)
            self._followers = [f for f in self._followers if f.offer(data)]
        await primary.send(data)

    def follow(self) -> EventStream:
        """A new follower: the snapshot now, then every later event; a finished run's
        follower gets the snapshot and ``end``."""
        if self.finished:
            return FinishedRun(self.run_id, self.owner, self.kept()).follow()
        stream = EventStream(encode_event(run_snapshot_event(self.state())), FOLLOWER_BUFFER_CHUNKS)
        if self._followers is None:
            self._followers = [stream]
        else:
            self._followers.append(stream)
        return stream

    def kept(self) -> bytes:
        """The finished run's state as a FinishedRun keeps it: marshalled, which is
        bytes the garbage collector does not track, and a fifth of what encoding the
        replay costs (most finished runs are never followed)."""
        return marshal.dumps(self.state())

    def finish(self, status: str, last: bytes = b"") -> None:
        """No more events after ``last`` (an ``end`` the run did not send itself)."""
        if self.finished:
            return
        self.status = status
        for stream in (self._primary, *(self._followers or ())):
            if stream is not None:
                stream.finish(last)
        self._primary = self._followers = None
        self._finished = True
        if self._done is not None:
            self._done.set()


class FinishedRun(NamedTuple):
    """A finished SSE run, as ChatService.run hands it to a follower."""

    run_id: str
    owner: str  # the session's creator (the turn's username)
    state: bytes  # Run.kept()

    def follow(self) -> EventStream:
        """The run's snapshot and ``end``."""
        snapshot = encode_event(run_snapshot_event(marshal.loads(self.state)))
        stream = EventStream(
            snapshot + encode_event(end_event(self.run_id)), FOLLOWER_BUFFER_CHUNKS
        )
        stream.finish()
        return stream
