"""Streamed deltas, and the events every turn ends with, are encoded from templates: byte
for byte what encoding the whole event dict gives."""

from __future__ import annotations

import pytest

from astrlite.chat.events import (
    CHAIN_REASONING,
    PlainDeltas,
    complete_event,
    complete_wire,
    end_event,
    end_wire,
    message_saved_event,
    message_saved_wire,
    plain_event,
    session_id_event,
    session_id_wire,
)
from astrlite.chat.framing import SSE
from astrlite.chat.turn import Turn
from astrlite.providers.base import ReasoningDelta, TextDelta, Usage
from astrlite.sse import encode_event

TEXTS = ["tok", " tok1", "", '"quoted" \\ back', "line\nbreak\t\x00", "你好 🤔", "\ud800 lone", "é"]


@pytest.mark.parametrize("chain_type", [None, CHAIN_REASONING])
@pytest.mark.parametrize("message_id", ["5f0c6a1e-0000-4000-8000-000000000000", 'odd "id" ü'])
def test_plain_deltas_match_the_event_encoding(chain_type: str | None, message_id: str) -> None:
    deltas = PlainDeltas(message_id, chain_type)
    for text in TEXTS:
        event = plain_event(text, streaming=True, message_id=message_id, chain_type=chain_type)
        assert deltas.encode(text) == encode_event(event)


def test_a_streaming_turn_sends_its_deltas_pre_encoded() -> None:
    turn = Turn("mid", streaming=True, display_reasoning=True)
    emits = [
        *turn.feed(ReasoningDelta("think")),
        *turn.feed(TextDelta("你好")),
        *turn.feed(TextDelta(' "x"')),
    ]
    assert len(emits) == 3
    for emit in emits:
        assert emit.wire == encode_event(emit.event)


@pytest.mark.parametrize("text", TEXTS)
def test_closing_events_match_the_event_encoding(text: str) -> None:
    assert session_id_wire(text) == encode_event(session_id_event(text))
    assert end_wire(text) == encode_event(end_event(text))
    for reasoning in ("", text, "思考"):
        made = complete_wire(text, reasoning, message_id=text)
        assert made == encode_event(complete_event(text, reasoning, message_id=text))
    for row_id in (1, 2**53):
        for checkpoint in (None, text):
            made = message_saved_wire(row_id, text, checkpoint)
            assert made == encode_event(message_saved_event(row_id, text, checkpoint))


def test_a_finished_turn_and_the_sse_framing_send_them_pre_encoded() -> None:
    turn = Turn('m "1"', streaming=True, display_reasoning=True)
    turn.feed(ReasoningDelta("思"))
    turn.feed(TextDelta("ok \\"))
    turn.feed(Usage(input_other=1, input_cached=0, output=2))
    closing = [emit for emit in turn.finish() if emit.wire is not None]
    assert [emit.event["type"] for emit in closing] == ["complete", "end"]
    for emit in closing:
        assert emit.wire == encode_event(emit.event)
    assert SSE.first("s", "m") == encode_event(session_id_event("s"))
    assert SSE.end("m") == encode_event(end_event("m"))
    saved = SSE.saved_event(3, "2026-01-01T00:00:00+00:00", "s", "c")
    assert SSE.saved_wire(3, "2026-01-01T00:00:00+00:00", "c") == encode_event(saved)
