"""The persistence rules of docs/compatibility.md M6, one at a time."""

from __future__ import annotations

from typing import Any

import pytest

from astrlite.chat.accumulator import ReplyAccumulator, is_save_point
from astrlite.chat.events import (
    AgentStats,
    agent_stats_event,
    complete_event,
    end_event,
    media_event,
    message_saved_event,
    plain_event,
    proactive_complete_event,
    session_id_event,
    tool_call_event,
    tool_call_result_event,
)

MID = "m"
STATS = AgentStats(1, 0, 2, 10.0, 11.0, 0.5)


def delta(text: str) -> dict[str, Any]:
    return plain_event(text, streaming=True, message_id=MID)


def full(text: str) -> dict[str, Any]:
    return plain_event(text, streaming=False, message_id=MID)


def feed_all(accumulator: ReplyAccumulator, events: list[dict[str, Any]]) -> list[Any]:
    return [accumulator.feed(event) for event in events]


@pytest.mark.parametrize(
    ("event", "saves"),
    [
        (delta("a"), False),
        (full("a"), True),
        (plain_event("r", streaming=True, chain_type="reasoning", message_id=MID), False),
        (tool_call_event("c", "t", {}, 1.0, message_id=MID), False),
        (tool_call_result_event("c", 2.0, "ok", message_id=MID), False),
        (media_event("image", "x.jpg", streaming=True, message_id=MID), False),
        (media_event("file", "x.txt", streaming=False, message_id=MID), True),
        (complete_event("a", "", message_id=MID), True),
        (proactive_complete_event("a", message_id=MID), True),
        (agent_stats_event(STATS), False),
        (end_event(MID), False),
        (session_id_event("s"), False),
        (message_saved_event(1, "t"), False),
    ],
)
def test_save_points(event: dict[str, Any], saves: bool) -> None:
    assert is_save_point(event) is saves
    assert (ReplyAccumulator().feed(event, "att") is not None) is saves


def test_streaming_appends_and_saves_at_complete_with_stats_and_reasoning() -> None:
    accumulator = ReplyAccumulator()
    events = [
        plain_event("Hm", streaming=True, chain_type="reasoning", message_id=MID),
        plain_event("m.", streaming=True, chain_type="reasoning", message_id=MID),
        delta("Hel"),
        delta("lo"),
        agent_stats_event(STATS),
    ]
    assert feed_all(accumulator, events) == [None] * 5
    assert accumulator.feed(complete_event("Hello", "Hmm.", message_id=MID)) == {
        "type": "bot",
        "message": [{"type": "plain", "text": "Hello"}],
        "reasoning": "Hmm.",
        "agent_stats": STATS.to_dict(),
    }


def test_non_streaming_plain_replaces_the_text() -> None:
    accumulator = ReplyAccumulator()
    accumulator.feed(delta("partial"))
    row = accumulator.feed(full("LLM 响应错误: boom"))
    assert row == {"type": "bot", "message": [{"type": "plain", "text": "LLM 响应错误: boom"}]}


def test_reset_after_a_save_and_stats_after_the_save_are_not_stored() -> None:
    accumulator = ReplyAccumulator()
    assert accumulator.feed(full("one")) is not None
    assert accumulator.feed(agent_stats_event(STATS)) is None
    assert accumulator.feed(end_event(MID)) is None
    assert accumulator.feed(full("two")) == {
        "type": "bot",
        "message": [{"type": "plain", "text": "two"}],
        "agent_stats": STATS.to_dict(),
    }


def test_empty_save_is_an_empty_row() -> None:
    assert ReplyAccumulator().feed(complete_event("", "", message_id=MID)) == {
        "type": "bot",
        "message": [],
    }


def test_tool_call_flushes_text_and_parts_keep_arrival_order() -> None:
    accumulator = ReplyAccumulator()
    events = [
        delta("Let me"),
        delta(" check."),
        tool_call_event("c1", "search", {"q": "x"}, 1.5, message_id=MID),
        media_event("image", "a.jpg", streaming=True, message_id=MID),
        tool_call_result_event("c1", 2.5, "found", message_id=MID),
        delta("Done."),
    ]
    for event in events:
        assert accumulator.feed(event, "att-a") is None
    assert accumulator.feed(complete_event("Let me check.Done.", "", message_id=MID)) == {
        "type": "bot",
        "message": [
            {"type": "plain", "text": "Let me check."},
            {"type": "image", "attachment_id": "att-a", "filename": "a.jpg"},
            {
                "type": "tool_call",
                "tool_calls": [
                    {
                        "id": "c1",
                        "name": "search",
                        "args": {"q": "x"},
                        "ts": 1.5,
                        "result": "found",
                        "finished_ts": 2.5,
                    }
                ],
            },
            {"type": "plain", "text": "Done."},
        ],
    }


def test_tool_calls_survive_a_save_and_unknown_results_add_nothing() -> None:
    accumulator = ReplyAccumulator()
    accumulator.feed(tool_call_event("c1", "slow", {}, 1.0, message_id=MID))
    assert accumulator.feed(full("meanwhile")) is not None
    accumulator.feed(tool_call_result_event("nope", 2.0, "?", message_id=MID))
    accumulator.feed(tool_call_result_event("c1", 3.0, "late", message_id=MID))
    row = accumulator.feed(full("after"))
    assert row is not None
    assert [part["type"] for part in row["message"]] == ["tool_call", "plain"]
    assert row["message"][0]["tool_calls"][0]["finished_ts"] == 3.0


def test_media_without_a_stored_attachment_adds_nothing() -> None:
    accumulator = ReplyAccumulator()
    row = accumulator.feed(media_event("image", "gone.jpg", streaming=False, message_id=MID))
    assert row == {"type": "bot", "message": []}


def test_each_non_streaming_media_event_is_its_own_row() -> None:
    accumulator = ReplyAccumulator()
    rows = [
        accumulator.feed(media_event("record", "v.wav", streaming=False, message_id=MID), "a1"),
        accumulator.feed(media_event("file", "d.pdf", streaming=False, message_id=MID), "a2"),
    ]
    assert rows == [
        {
            "type": "bot",
            "message": [{"type": "record", "attachment_id": "a1", "filename": "v.wav"}],
        },
        {"type": "bot", "message": [{"type": "file", "attachment_id": "a2", "filename": "d.pdf"}]},
    ]
