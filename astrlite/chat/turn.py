"""One LLM turn as a sans-IO state machine: provider events in, back-queue events out.

The runner drives it::

    turn = Turn(message_id, streaming=True, display_reasoning=False)
    try:
        async for provider_event in provider.reply(request):
            out = turn.feed(provider_event)
            if isinstance(out, StoreMedia):  # copy the file first, then announce it
                stored = await store_bot_media(out.media)
                out = turn.media_stored(out, stored.name, stored.attachment_id)
            for emit in out:
                await back_queue.put(emit)
    except ProviderError as error:
        out = turn.fail(str(error))
    else:
        out = turn.finish()
    ...put the closing emits; the last is always ``end``.

The back queue's consumer sends each ``emit.event`` and feeds it, with
``emit.attachment_id``, to the turn's ``ReplyAccumulator``, which returns a row to write
(then ``message_saved``) exactly where ``emit.save_point`` is true.

What comes out (docs/compatibility.md M5 and M6, plus F7 for errors):

- streaming: a ``plain`` per text delta (``streaming`` true), a ``plain`` with chain_type
  ``reasoning`` per reasoning delta when reasoning is displayed, tool events as they come
  (``streaming`` false), media events (``streaming`` true); then ``agent_stats``,
  ``complete`` (all the text, all displayed reasoning) and ``end``.
- not streaming: text and reasoning are held back and sent as full ``plain`` events
  (``streaming`` false) before the next tool or media event and at the end: first
  ``🤔 思考: <reasoning>\\n`` when reasoning is displayed, then the text. Each becomes its
  own history row. Then ``agent_stats`` and ``end``.
- hidden reasoning is neither sent nor stored.
- video replies are dropped (the webchat side never sends video, M12).
- a provider error: what was sent stays sent (held-back text is dropped), then
  ``plain`` ``LLM 响应错误: <reason>`` (``streaming`` false, so it is saved),
  ``agent_stats`` and ``end``; no ``complete``.

With ``stats_first`` (the 4.27 profile) ``agent_stats`` opens the closing events, before
a non-streaming reply's held text, and a provider error is the reply's text in the turn's
mode (see ``fail``). ``stop`` closes a turn its client stopped (G5).

``agent_stats`` sums every ``Usage``; ``start_time`` is when the Turn was made,
``end_time`` when it finished, ``time_to_first_token`` the first non-empty text or
reasoning delta (displayed or not) minus the start, and 0.0 when none came or when not
streaming (as AstrBot does, M6). Tool ``ts`` values are clock readings at the tool events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from astrlite import sources
from astrlite.chat.accumulator import is_save_point
from astrlite.chat.events import (
    CHAIN_REASONING,
    MEDIA_TAGS,
    AgentStats,
    Event,
    PlainDeltas,
    agent_stats_event,
    complete_event,
    complete_wire,
    end_event,
    end_wire,
    media_event,
    plain_event,
    tool_call_event,
    tool_call_result_event,
)
from astrlite.chat.text import TextBuffer
from astrlite.providers.base import (
    MediaReply,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)

ERROR_PREFIX = "LLM 响应错误: "  # the original's wording (F7)
REASONING_PREFIX = "🤔 思考: "  # a non-streaming reasoning line: prefix, reasoning, "\n"
NO_FIRST_TOKEN = 0.0


class Emit(NamedTuple):
    """A back-queue event; ``attachment_id`` is set on media events (for the accumulator).

    A NamedTuple, not a frozen dataclass: a turn makes one per event, and on Python 3.11
    a frozen dataclass's ``__init__`` costs 3.5x as much (each field set through
    ``object.__setattr__``)."""

    event: Event
    attachment_id: str | None = None
    wire: bytes | None = None  # encode_event(event), when made more cheaply
    saved: bool = True  # False: never a save point (a stopped turn's empty ``complete``)

    @property
    def save_point(self) -> bool:
        """A bot row is written right after this event (the accumulator's rule)."""
        return self.saved and is_save_point(self.event)


@dataclass(frozen=True, slots=True)
class StoreMedia:
    """Store ``media`` as an attachment, then call ``Turn.media_stored``.

    If the file cannot be stored, skip it: nothing is announced or saved for it.
    """

    media: MediaReply


class Turn:
    """Translates one provider reply into the ordered events of the turn's back queue."""

    __slots__ = (
        "_clock",
        "_context_tokens",
        "_deltas",
        "_display_reasoning",
        "_file_display_names",
        "_finished",
        "_first_token",
        "_input_cached",
        "_input_other",
        "_media_sent",
        "_message_id",
        "_output",
        "_reasoning",
        "_reasoning_deltas",
        "_start",
        "_stats_first",
        "_streaming",
        "_text",
    )

    def __init__(
        self,
        message_id: str,
        *,
        streaming: bool,
        display_reasoning: bool,
        stats_first: bool = False,
        context_tokens: bool = False,
        file_display_names: bool = False,
        clock: Callable[[], float] = sources.timestamp,
    ) -> None:
        self._message_id = message_id
        self._streaming = streaming
        self._stats_first = stats_first
        self._context_tokens = context_tokens
        self._file_display_names = file_display_names
        self._display_reasoning = display_reasoning
        self._clock = clock
        self._start = clock()
        self._first_token: float | None = None
        # Streaming: everything so far (for ``complete``). Not streaming: not yet sent.
        self._text = TextBuffer()
        self._reasoning = TextBuffer()
        self._input_other = 0
        self._input_cached = 0
        self._output = 0
        self._finished = False
        self._deltas: PlainDeltas | None = None
        self._reasoning_deltas: PlainDeltas | None = None
        self._media_sent = False

    def feed(self, event: ProviderEvent) -> list[Emit] | StoreMedia:
        """The events that follow from one provider event, or a request to store media."""
        self._check_open()
        mid = self._message_id
        match event:
            case TextDelta(text=text):
                return self._on_text(text)
            case ReasoningDelta(text=text):
                return self._on_reasoning(text)
            case ToolCall(id=call_id, name=name, args=args):
                return self._after_flush(
                    tool_call_event(call_id, name, args, self._clock(), message_id=mid)
                )
            case ToolResult(id=call_id, result=result):
                return self._after_flush(
                    tool_call_result_event(call_id, self._clock(), result, message_id=mid)
                )
            case MediaReply(kind=kind):
                return StoreMedia(event) if kind in MEDIA_TAGS else []
            case Usage():
                self._input_other += event.input_other
                self._input_cached += event.input_cached
                self._output += event.output
                return []
        raise TypeError(f"not a provider event: {event!r}")

    def media_stored(self, request: StoreMedia, stored_name: str, attachment_id: str) -> list[Emit]:
        """Announce media stored as ``stored_name`` (the name in ``[IMAGE]<name>``)."""
        self._check_open()
        self._media_sent = True
        mid = self._message_id
        media = request.media
        display = media.filename if self._file_display_names else None
        event = media_event(
            media.kind, stored_name, streaming=self._streaming, message_id=mid, display_name=display
        )
        return self._after_flush(event, attachment_id)

    def finish(self) -> list[Emit]:
        """The closing events of a reply that ended normally; ``end`` is last."""
        self._check_open()
        mid = self._message_id
        stats = Emit(agent_stats_event(self._stats()))
        out = [stats, *self._flush()] if self._stats_first else [*self._flush(), stats]
        if self._streaming:
            text, reasoning = self._text.value(), self._reasoning.value()
            complete = complete_event(text, reasoning, message_id=mid)
            out.append(Emit(complete, wire=complete_wire(text, reasoning, message_id=mid)))
        out.append(Emit(end_event(mid), wire=end_wire(mid)))
        self._finished = True
        return out

    def fail(self, reason: str) -> list[Emit]:
        """The closing events after a ProviderError; ``end`` is last. F7 (4.22): the
        error as a full ``plain``, then ``agent_stats``. 4.27: ``agent_stats``, then the
        error as the reply's text in the turn's mode (a delta and ``complete``)."""
        self._check_open()
        mid = self._message_id
        text = ERROR_PREFIX + reason
        self._finished = True
        stats = Emit(agent_stats_event(self._stats()))
        if not self._stats_first:
            error = plain_event(text, streaming=False, message_id=mid)
            return [Emit(error), stats, Emit(end_event(mid))]
        out = [stats, Emit(plain_event(text, streaming=self._streaming, message_id=mid))]
        if self._streaming:
            out.append(Emit(complete_event(text, "", message_id=mid)))
        return [*out, Emit(end_event(mid))]

    def stop(self) -> list[Emit]:
        """The closing events of a turn stopped by its client (G5): what was generated is
        sent in full and saved (a non-streaming turn's held text, a streaming turn's
        ``complete``); an empty ``complete`` saves nothing. ``end`` is last."""
        self._check_open()
        mid = self._message_id
        out = self._flush()
        if self._streaming:
            text, reasoning = self._text.value(), self._reasoning.value()
            complete = complete_event(text, reasoning, message_id=mid)
            out.append(Emit(complete, saved=bool(text or reasoning or self._media_sent)))
        out.append(Emit(end_event(mid)))
        self._finished = True
        return out

    def _on_text(self, text: str) -> list[Emit]:
        if not text:
            return []
        self._note_first_token()
        self._text.append(text)
        if not self._streaming:
            return []
        if self._deltas is None:
            self._deltas = PlainDeltas(self._message_id)
        event = plain_event(text, streaming=True, message_id=self._message_id)
        return [Emit(event, wire=self._deltas.encode(text))]

    def _on_reasoning(self, text: str) -> list[Emit]:
        if not text:
            return []
        self._note_first_token()
        if not self._display_reasoning:
            return []
        self._reasoning.append(text)
        if not self._streaming:
            return []
        if self._reasoning_deltas is None:
            self._reasoning_deltas = PlainDeltas(self._message_id, CHAIN_REASONING)
        event = plain_event(
            text, streaming=True, chain_type=CHAIN_REASONING, message_id=self._message_id
        )
        return [Emit(event, wire=self._reasoning_deltas.encode(text))]

    def _after_flush(self, event: Event, attachment_id: str | None = None) -> list[Emit]:
        return [*self._flush(), Emit(event, attachment_id)]

    def _flush(self) -> list[Emit]:
        """Not streaming: send the held-back reasoning line and text as full plains."""
        if self._streaming:
            return []
        out = []
        mid = self._message_id
        if self._reasoning:
            line = f"{REASONING_PREFIX}{self._reasoning.value()}\n"
            out.append(Emit(plain_event(line, streaming=False, message_id=mid)))
        if self._text:
            out.append(Emit(plain_event(self._text.value(), streaming=False, message_id=mid)))
        self._text.clear()
        self._reasoning.clear()
        return out

    def _note_first_token(self) -> None:
        if self._streaming and self._first_token is None:
            self._first_token = self._clock()

    def _stats(self) -> AgentStats:
        first = NO_FIRST_TOKEN if self._first_token is None else self._first_token - self._start
        return AgentStats(
            input_other=self._input_other,
            input_cached=self._input_cached,
            output=self._output,
            start_time=self._start,
            end_time=self._clock(),
            time_to_first_token=first,
            context_tokens=self._context_tokens,
        )

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError("the turn has already finished")
