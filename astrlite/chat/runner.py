"""Chat turns: accepted by the endpoint, run in the background, streamed to the client.

Turns of one session run one at a time, in arrival order, each to its end; turns of
different sessions run concurrently. A waiting turn's stream is open at once (its
``session_id`` event, then heartbeats); the turn writes its user row when it starts. A
turn runs in the server's background task group, so it finishes and saves its reply
even when its client has gone (F5).

Each session with turns in flight has a lane: its waiting turns, one worker task that
runs them, and the running turn (the one ``inject`` reaches). The lane remembers who
owns the session, so a second username cannot slip in before the first turn has
created the session row.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import anyio
import anyio.lowlevel

from astrlite import sources
from astrlite.background import Background
from astrlite.chat import prompt
from astrlite.chat.events import (
    end_event,
    plain_event,
    run_started_event,
    user_message_saved_event,
)
from astrlite.chat.framing import SSE, Framing
from astrlite.chat.live import LiveTurn, ProactivePart, check_parts
from astrlite.chat.runs import COMPLETED, RUNNING, STOPPED, FinishedRun, Run
from astrlite.chat.stream import EventStream
from astrlite.chat.turn import Emit, StoreMedia, Turn
from astrlite.chat.user_message import ParsedMessage
from astrlite.compat import Profile
from astrlite.configs import Config, ConfigSet
from astrlite.errors import INTERNAL_ERROR, business
from astrlite.files.attachments import AttachmentRow, AttachmentStore
from astrlite.operations.metrics import Metrics
from astrlite.providers.base import (
    Attachment,
    ChatMessage,
    Provider,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
)
from astrlite.providers.registry import ProviderSet
from astrlite.store.chat import ChatStore, SessionRow, SessionTaken, UserMessage
from astrlite.store.sessions import SessionStore

log = logging.getLogger("astrlite")

TOO_MANY_QUEUED = "Too many queued turns for this session"
# Chunks a stream may hold before its turn waits for the client: enough to let a burst
# of deltas leave in one socket write, few enough that a slow reader holds little.
STREAM_BUFFER_CHUNKS = 64
# F20: the session's display name is the first user message's text, cut to this length.
TITLE_CHARS = 40
SENDER_ID = "openapi:{key_id}:{username}"  # F12: never a bare caller-chosen name
# How long a finished run can still be resumed (a snapshot and `end`).
RUN_LINGER_SECONDS = 30.0
# 4.27's words for a selected_provider that does not exist (M19).
UNKNOWN_PROVIDER = "LLM 请求失败：未找到指定的提供商 `{}`。请检查提供商配置或重新选择可用模型。"


class TurnRequest(NamedTuple):
    """An accepted ``POST /api/v1/chat`` (a NamedTuple for the reason Emit is one)."""

    message_id: str
    session_id: str
    username: str
    key_id: str  # the calling key: owns the bot's media, limits context media (F21)
    message: ParsedMessage
    streaming: bool | None  # None: the config's ``streaming``
    provider_id: str | None  # None: the config's ``provider``
    model: str | None
    config_choice: str | None  # a config id to bind the session to; None keeps it
    new_session: bool = False  # the server made session_id up: it has no history yet


class _Queued(NamedTuple):
    request: TurnRequest
    run: Run


@dataclass(slots=True)
class _Control:
    """Stops the running turn: at once while it waits on its provider, else right after
    the batch of events it is sending (so a row is never half written)."""

    scope: anyio.CancelScope | None = None
    busy: bool = False
    stop_requested: bool = False

    def stop(self) -> None:
        self.stop_requested = True
        if self.scope is not None and not self.busy:
            self.scope.cancel()


@dataclass(slots=True)
class _Lane:
    creator: str
    # A list, not a deque (whose first block costs 600 bytes): most lanes hold one turn.
    waiting: list[_Queued] = field(default_factory=list)
    running: LiveTurn | None = None
    current: Run | None = None
    control: _Control | None = None


def title_of(text: str) -> str | None:
    """F20: the text on one line, cut to TITLE_CHARS; None when there is no text."""
    return " ".join(text.split())[:TITLE_CHARS] or None


class ChatService:
    def __init__(
        self,
        *,
        profile: Profile,
        store: ChatStore,
        sessions: SessionStore,
        attachments: AttachmentStore,
        configs: ConfigSet,
        providers: ProviderSet,
        background: Background,
        max_queue: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.sessions = sessions  # what the 4.27 session routes do to a session
        self.attachments = attachments
        self._configs = configs
        self._providers = providers
        self._background = background
        self._max_queue = max_queue
        self._profile = profile
        self._lanes: dict[str, _Lane] = {}
        self._runs: dict[str, Run] = {}  # live, by run id
        # (owner, Run.kept()) of the SSE runs finished less than run_linger ago, by run id.
        # Thousands linger on a busy server: as plain tuples of strings and bytes the
        # garbage collector stops tracking them, so they cost its full collections
        # nothing (kept as Runs, each full pause grew with the turn rate, to 10-35 ms
        # under 32 concurrent turns).
        self._ended: dict[str, tuple[str, bytes]] = {}
        self._expiring: list[tuple[float, str]] = []  # a heap of (expiry, run id)
        self.run_linger = RUN_LINGER_SECONDS
        self._metrics = metrics

    @property
    def profile(self) -> Profile:
        return self._profile

    def queued(self) -> int:
        """Turns waiting behind a running turn of their session."""
        return sum(len(lane.waiting) for lane in self._lanes.values())

    def creator_of(self, session_id: str) -> str | None:
        """Who owns the session: its row, or the turn about to create it."""
        lane = self._lanes.get(session_id)
        if lane is not None:
            return lane.creator
        row = self.store.session(session_id)
        return None if row is None else row.creator

    async def list_sessions(
        self, creator: str, platform_id: str | None, offset: int, limit: int
    ) -> tuple[list[SessionRow], int]:
        """One page of a creator's sessions, newest activity first (F17), and the total."""
        return await self.store.list_sessions(creator, platform_id, offset, limit)

    def submit(self, request: TurnRequest, framing: Framing = SSE) -> EventStream:
        """Queue a validated turn and return its stream, its events encoded by
        ``framing``; business 429 when the session already has ``max_queue`` turns
        waiting. Nothing is awaited, so what the caller checked still holds."""
        lane = self._lanes.get(request.session_id)
        if lane is not None and len(lane.waiting) >= self._max_queue:
            raise business(429, TOO_MANY_QUEUED)
        self._forget_expired()
        first = framing.first(request.session_id, request.message_id)
        stream = EventStream(first, STREAM_BUFFER_CHUNKS)
        checkpoint_id = sources.new_uuid()
        run = Run(
            request.message_id, request.session_id, request.username, checkpoint_id, stream, framing
        )
        if lane is None:
            lane = _Lane(request.username)
            self._background.start_soon(self._work, request.session_id, lane)
            self._lanes[request.session_id] = lane
        lane.waiting.append(_Queued(request, run))
        self._runs[run.run_id] = run
        return stream

    def run(self, run_id: str) -> Run | FinishedRun | None:
        """A resumable run (one streamed as SSE, as in 4.27) that is live or finished
        less than ``run_linger`` seconds ago."""
        self._forget_expired()
        run = self._runs.get(run_id)
        if run is not None:
            return run if run.framing.sse else None
        ended = self._ended.get(run_id)
        return None if ended is None else FinishedRun(run_id, *ended)

    def active_runs(self, session_id: str) -> list[Run]:
        """The session's unfinished runs, in creation order (running first)."""
        lane = self._lanes.get(session_id)
        if lane is None:
            return []
        runs = [] if lane.current is None or lane.current.finished else [lane.current]
        return runs + [queued.run for queued in lane.waiting]

    def stop(self, session_id: str) -> list[Run]:
        """Stop the session's running turn (it saves what it generated, then ends) and
        drop its waiting turns (they end at once; nothing of theirs was saved). Returns
        the runs stopped; await ``run.wait_done()`` to know they are over."""
        lane = self._lanes.get(session_id)
        if lane is None:
            return []
        stopped = [queued.run for queued in lane.waiting]
        lane.waiting.clear()
        for run in stopped:
            self._finished(run, STOPPED)
        current, control = lane.current, lane.control
        if current is not None and control is not None and not current.finished:
            if not control.stop_requested:
                stopped.insert(0, current)
            control.stop()
        return stopped

    def _finished(self, run: Run, status: str) -> None:
        if not run.finished:  # a turn that ended early: its `end` is sent here
            run.finish(status, run.framing.end(run.run_id))
        self._runs.pop(run.run_id, None)
        if run.framing.sse:  # it may be resumed a while
            self._ended[run.run_id] = (run.owner, run.kept())
            heapq.heappush(self._expiring, (time.monotonic() + self.run_linger, run.run_id))

    def _forget_expired(self) -> None:
        now = time.monotonic()
        while self._expiring and self._expiring[0][0] <= now:
            self._ended.pop(heapq.heappop(self._expiring)[1], None)

    def inject(self, session_id: str, parts: Sequence[ProactivePart]) -> bool:
        """Push a message into the session's running turn, for ``/api/v1/im/message``.

        True: the running turn streams it to its client (as plain / media events, then
        a proactive ``complete``, all with the turn's message_id) and saves it as its
        own bot row with ``message_saved``. False: no turn is running (or it is
        already ending); save the message to history yourself (``store.add_bot_row``).
        ``parts`` must be non-empty; see ProactivePart for the kinds (ValueError).
        """
        check_parts(parts)
        lane = self._lanes.get(session_id)
        return lane is not None and lane.running is not None and lane.running.offer(parts)

    async def _work(self, session_id: str, lane: _Lane) -> None:
        try:
            while lane.waiting:
                queued = lane.waiting.pop(0)
                lane.current, lane.control = queued.run, _Control()
                try:
                    await self._run(queued.request, queued.run, lane)
                except Exception:
                    log.exception("chat turn %s failed", queued.request.message_id)
                finally:
                    # A turn that stopped early (no provider, a failure) still ends (G5).
                    stopped = lane.control is not None and lane.control.stop_requested
                    self._finished(queued.run, STOPPED if stopped else COMPLETED)
                    lane.running = lane.control = None
        finally:
            del self._lanes[session_id]
            for queued in lane.waiting:  # only after a cancellation (shutdown)
                queued.run.finish(STOPPED)

    async def _run(self, request: TurnRequest, run: Run, lane: _Lane) -> None:
        profile = self._profile
        user = UserMessage(
            sender_id=SENDER_ID.format(key_id=request.key_id, username=request.username),
            sender_name=request.username,
            parts=request.message.parts,
            title=title_of(request.message.text),
            checkpoint_id=run.stored_checkpoint_id,
        )
        try:
            started = await self.store.start_turn(
                request.session_id,
                request.username,
                request.config_choice,
                user,
                new=request.new_session,
            )
        except SessionTaken:
            log.warning(
                "session %r was taken before turn %s", request.session_id, request.message_id
            )
            return
        run.status = RUNNING
        if profile.run_events and run.framing.shows_saves:
            saved = user_message_saved_event(
                started.user_row_id, started.created_at, run.checkpoint_id
            )
            await run.send([Emit(saved)], replayed=False)
        if profile.run_events:
            await run.send([Emit(run_started_event(run.run_id))])
        control = lane.control
        if control is None or control.stop_requested:
            return
        config = self._config(started.config_id)
        provider_id = request.provider_id or config.provider
        provider = self._providers.get(config.id, provider_id)
        if self._metrics is not None:
            self._metrics.turns_started += 1
        live = LiveTurn(run, self.store, self._background, profile=profile)
        if provider is None:  # an unknown selected_provider (4.22: just `end`, as AstrBot, M5)
            log.warning(
                "chat turn %s: no provider %r in config %s; the reply is empty",
                request.message_id,
                provider_id,
                config.id,
            )
            if self._metrics is not None:
                self._metrics.turns_failed += 1
            if profile.run_events:
                text = UNKNOWN_PROVIDER.format(provider_id)
                shown = plain_event(text, streaming=False, message_id=run.run_id)
                await live.finish([Emit(shown), Emit(end_event(run.run_id))])
            return
        streaming = config.streaming if request.streaming is None else request.streaming
        asked = self._provider_request(request, config, started.user_row_id, streaming)
        lane.running = live
        turn = Turn(
            request.message_id,
            streaming=streaming,
            display_reasoning=config.display_reasoning,
            stats_first=profile.stats_first,
            context_tokens=profile.context_tokens,
            file_display_names=profile.file_display_names,
        )
        await self._reply(live, turn, provider, asked, request.key_id, control)

    async def _reply(
        self,
        live: LiveTurn,
        turn: Turn,
        provider: Provider,
        asked: ProviderRequest,
        key_id: str,
        control: _Control,
    ) -> None:
        events = provider.reply(asked)
        first = True
        try:
            with anyio.CancelScope() as control.scope:
                async for event in events:
                    control.busy = True
                    out = turn.feed(event)
                    if isinstance(out, StoreMedia):
                        out = await self._store_media(turn, out, key_id)
                    if out:
                        await live.publish(out)
                        if first:
                            # The first events leave now, not after the rest of a burst (a
                            # whole reply can arrive in one upstream read): time to the
                            # first token under load, for one checkpoint per turn.
                            first = False
                            await anyio.lowlevel.checkpoint()
                    control.busy = False
                    if control.stop_requested:
                        break
        except ProviderError as error:
            log.warning("provider %s failed: %s", provider.id, error)
            self._count_failure(provider.id)
            final = turn.fail(str(error))
        except Exception:
            log.exception("provider %s failed", provider.id)
            self._count_failure(provider.id)
            final = turn.fail(INTERNAL_ERROR)
        else:
            if self._metrics is not None:
                self._metrics.turns_finished += 1
            final = turn.stop() if control.stop_requested else turn.finish()
        finally:
            control.scope = None
            await _close(events)
        await live.finish(final, STOPPED if control.stop_requested else COMPLETED)

    def _count_failure(self, provider_id: str) -> None:
        if self._metrics is not None:
            self._metrics.turns_failed += 1
            self._metrics.upstream_error(provider_id)

    async def _store_media(self, turn: Turn, out: StoreMedia, key_id: str) -> list[Emit]:
        media = out.media
        try:
            row = await self.attachments.store_copy(
                Path(media.path), filename=media.filename, kind=media.kind, owner_key_id=key_id
            )
        except OSError as error:
            log.warning("bot media %s not stored: %s", media.filename, error.strerror)
            return []
        return turn.media_stored(out, row.stored_name, row.attachment_id)

    def _config(self, config_id: str | None) -> Config:
        found = None if config_id is None else self._configs.by_id(config_id)
        return found or self._configs.default

    def _provider_request(
        self, request: TurnRequest, config: Config, user_row_id: int, streaming: bool
    ) -> ProviderRequest:
        def attachment(attachment_id: str) -> Attachment | None:
            row = self.attachments.get(attachment_id, request.key_id)
            return None if row is None else self._for_provider(row)

        rows = (
            []
            if request.new_session
            else self.store.context(request.session_id, user_row_id, config.context_turns)
        )
        message = request.message
        current = ChatMessage(
            "user", prompt.user_text(message), tuple(self._for_provider(m) for m in message.media)
        )
        return prompt.build_request(
            config.system_prompt,
            prompt.history_messages(rows, attachment),
            current,
            model=request.model,
            stream=streaming,
        )

    def _for_provider(self, row: AttachmentRow) -> Attachment:
        path = str(self.attachments.absolute(row))
        return Attachment(row.kind, path, row.mime_type, row.original_name)


async def _close(events: AsyncIterator[ProviderEvent]) -> None:
    """Close a provider's generator now rather than whenever it is collected."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
