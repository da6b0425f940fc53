"""Streamed deltas are encoded from a per-turn template: byte for byte what encoding the
whole event dict gives."""

from __future__ import annotations

import pytest

from astrlite.chat.events import CHAIN_REASONING, PlainDeltas, plain_event
from astrlite.chat.turn import Turn
from astrlite.providers.base import ReasoningDelta, TextDelta
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
