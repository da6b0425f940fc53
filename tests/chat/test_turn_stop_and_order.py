"""Turn's closing events under the 4.27 order (stats_first, context_tokens) and when its
client stops it (G5)."""

from __future__ import annotations

from astrlite.chat.turn import Emit, Turn
from astrlite.providers.base import TextDelta, Usage


def kinds(emits: list[Emit]) -> list[tuple[str, bool]]:
    return [(e.event["type"], e.save_point) for e in emits]


def clock() -> float:
    return 100.0


def test_stats_first_non_streaming() -> None:
    turn = Turn("m", streaming=False, display_reasoning=False, stats_first=True, clock=clock)
    turn.feed(TextDelta("Hi"))
    turn.feed(Usage(input_other=3, input_cached=2, output=1))
    closing = turn.finish()
    assert kinds(closing) == [("agent_stats", False), ("plain", True), ("end", False)]
    assert "current_context_tokens" not in closing[0].event["data"]


def test_context_tokens_are_the_input() -> None:
    turn = Turn("m", streaming=True, display_reasoning=False, context_tokens=True, clock=clock)
    turn.feed(Usage(input_other=3, input_cached=2, output=1))
    stats = turn.finish()[0].event["data"]
    assert list(stats)[:2] == ["token_usage", "current_context_tokens"]
    assert stats["current_context_tokens"] == 5


def test_failure_under_stats_first_is_the_reply_text() -> None:
    streaming = Turn("m", streaming=True, display_reasoning=False, stats_first=True, clock=clock)
    closing = streaming.fail("boom")
    assert kinds(closing) == [
        ("agent_stats", False),
        ("plain", False),
        ("complete", True),
        ("end", False),
    ]
    assert closing[1].event["streaming"] is True
    assert closing[1].event["data"] == closing[2].event["data"] == "LLM 响应错误: boom"
    quiet = Turn("m", streaming=False, display_reasoning=False, stats_first=True, clock=clock)
    assert kinds(quiet.fail("boom")) == [("agent_stats", False), ("plain", True), ("end", False)]


def test_stop_saves_what_was_generated() -> None:
    streaming = Turn("m", streaming=True, display_reasoning=False, clock=clock)
    streaming.feed(TextDelta("Hel"))
    closing = streaming.stop()
    assert kinds(closing) == [("complete", True), ("end", False)]
    assert closing[0].event["data"] == "Hel"
    held = Turn("m", streaming=False, display_reasoning=False, clock=clock)
    held.feed(TextDelta("Hel"))
    assert kinds(held.stop()) == [("plain", True), ("end", False)]


def test_stop_before_any_output_saves_nothing() -> None:
    streaming = Turn("m", streaming=True, display_reasoning=False, clock=clock)
    closing = streaming.stop()
    assert kinds(closing) == [("complete", False), ("end", False)]
    assert closing[0].event["data"] == ""
    assert kinds(Turn("m", streaming=False, display_reasoning=False, clock=clock).stop()) == [
        ("end", False)
    ]
