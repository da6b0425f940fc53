"""The turn state machine + accumulator against the transcripts observed from AstrBot
(docs/compatibility.md M5, M6).

The first four transcripts are copied verbatim as AstrBot sent them: the injected clock
gives the very times observed, so the bytes must match exactly. The others follow the
observed behaviour (M5, M6, and F7 for errors) with made-up ids and round times.
"""

# ruff: noqa: E501  (transcripts are verbatim wire lines)

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from astrlite.chat.accumulator import BotRow, ReplyAccumulator
from astrlite.chat.events import (
    media_event,
    message_saved_event,
    plain_event,
    proactive_complete_event,
    session_id_event,
)
from astrlite.chat.turn import Emit, StoreMedia, Turn
from astrlite.providers.base import (
    MediaReply,
    ProviderEvent,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from astrlite.sse import encode_event
from tests.support.transcripts import NON_STREAMING, STREAMING, TOOL_STREAMING

PROACTIVE_HEAD = r"""
data: {"type": "session_id", "data": null, "session_id": "slow-img"}
data: {"type": "plain", "data": "pic:", "streaming": true, "chain_type": null, "message_id": "8c0cf7f3-b8cc-4941-a414-8d5647bc5244"}
data: {"type": "image", "data": "[IMAGE]fd38b025-c414-4941-8964-dfca968abfd8.jpg", "streaming": true, "message_id": "8c0cf7f3-b8cc-4941-a414-8d5647bc5244"}
data: {"type": "file", "data": "[FILE]defd1d2a-e7a7-419b-89bc-e8bddbe30653.txt", "streaming": true, "message_id": "8c0cf7f3-b8cc-4941-a414-8d5647bc5244"}
data: {"type": "complete", "data": "[FILE]defd1d2a-e7a7-419b-89bc-e8bddbe30653.txt", "streaming": true, "chain_type": null, "message_id": "8c0cf7f3-b8cc-4941-a414-8d5647bc5244"}
data: {"type": "message_saved", "data": {"id": 48, "created_at": "2026-11-24T12:30:19.481811+00:00"}}
data: {"type": "plain", "data": "Hello", "streaming": true, "chain_type": null, "message_id": "8c0cf7f3-b8cc-4941-a414-8d5647bc5244"}
"""

MID = "00000000-0000-4000-8000-000000000001"
CREATED = "2026-11-24T12:00:00.000000+00:00"
IMAGE_NAME = "fd38b025-c414-4941-8964-dfca968abfd8.jpg"


def frames(transcript: str) -> bytes:
    """One SSE frame per non-empty line of a transcript."""
    lines = transcript.strip().splitlines()
    return b"".join(line.encode() + b"\n\n" for line in lines if line)


@dataclass
class Run:
    """What the client received and what was saved."""

    stream: bytes
    rows: list[BotRow]
    events: list[dict[str, Any]] = field(default_factory=list)


def drive(
    provider_events: Iterable[ProviderEvent],
    *,
    session_id: str,
    message_id: str,
    streaming: bool,
    clock: Sequence[float],
    row_ids: Sequence[tuple[int, str]] = (),
    error: str | None = None,
    display_reasoning: bool = False,
    stored_media: Sequence[tuple[str, str]] = (),
    injected: Sequence[Emit] = (),
) -> Run:
    """A minimal chat runner: the turn feeds the back queue, the consumer saves rows."""
    times = iter(clock)
    rows_left = iter(row_ids)
    media_left = iter(stored_media)
    accumulator = ReplyAccumulator()
    run = Run(encode_event(session_id_event(session_id)), [])

    def forward(emits: Iterable[Emit]) -> None:
        for emit in emits:
            run.events.append(emit.event)
            run.stream += encode_event(emit.event)
            row = accumulator.feed(emit.event, emit.attachment_id)
            assert emit.save_point == (row is not None)
            if row is not None:
                run.rows.append(row)
                run.stream += encode_event(message_saved_event(*next(rows_left)))

    forward(injected)
    turn = Turn(
        message_id,
        streaming=streaming,
        display_reasoning=display_reasoning,
        clock=lambda: next(times),
    )
    for provider_event in provider_events:
        out = turn.feed(provider_event)
        if isinstance(out, StoreMedia):
            out = turn.media_stored(out, *next(media_left))
        forward(out)
    forward(turn.fail(error) if error is not None else turn.finish())
    assert next(times, None) is None, "unused clock readings"
    assert next(rows_left, None) is None, "fewer rows saved than expected"
    return run


def words(*deltas: str) -> list[ProviderEvent]:
    return [TextDelta(delta) for delta in deltas]


def stats(inputs: int, output: int, start: float, end: float, first: float) -> dict[str, Any]:
    return {
        "token_usage": {"input_other": inputs, "input_cached": 0, "output": output},
        "start_time": start,
        "end_time": end,
        "time_to_first_token": first,
    }


# --- verbatim transcripts ---------------------------------------------------------------


def test_streaming_reply() -> None:
    run = drive(
        [*words("Hello", " from", " fake", " LLM!"), Usage(12, 0, 4)],
        session_id="sess-stream-1",
        message_id="cc320c35-9e50-44e0-b09f-8397855c4abd",
        streaming=True,
        clock=[1795523157.6381805, 1795523157.6381805 + 0.03892874717712402, 1795523157.8692229],
        row_ids=[(2, "2026-11-24T12:25:57.931114+00:00")],
    )
    assert run.stream == frames(STREAMING)
    assert run.rows == [
        {
            "type": "bot",
            "message": [{"type": "plain", "text": "Hello from fake LLM!"}],
            "agent_stats": stats(
                12, 4, 1795523157.6381805, 1795523157.8692229, 0.03892874717712402
            ),
        }
    ]


def test_non_streaming_reply() -> None:
    run = drive(
        [*words("Hello", " from", " fake", " LLM!"), Usage(12, 0, 4)],
        session_id="sess-nostream-1",
        message_id="0b0f90c7-29bb-45f9-b11c-9851bd9e8891",
        streaming=False,
        clock=[1795523160.2124925, 1795523160.2172234],
        row_ids=[(4, "2026-11-24T12:26:00.270603+00:00")],
    )
    assert run.stream == frames(NON_STREAMING)
    assert run.rows == [
        {"type": "bot", "message": [{"type": "plain", "text": "Hello from fake LLM!"}]}
    ]


TOOL_ARGS = {"query": "x", "url": "http://127.0.0.1:1/"}
TOOL_EVENTS: list[ProviderEvent] = [
    ToolCall("call_abc123", "list_future_tasks", TOOL_ARGS),
    ToolResult("call_abc123", "No cron jobs found."),
]
TOOL_PART = {
    "type": "tool_call",
    "tool_calls": [
        {
            "id": "call_abc123",
            "name": "list_future_tasks",
            "args": TOOL_ARGS,
            "ts": 1795523169.1597362,
            "result": "No cron jobs found.",
            "finished_ts": 1795523169.1798027,
        }
    ],
}


def test_streaming_tool_call() -> None:
    start = 1795523169.1361923
    run = drive(
        [*TOOL_EVENTS, *words("Tool", " done."), Usage(10, 0, 5), Usage(12, 0, 4)],
        session_id="sess-tool-1",
        message_id="00e9b4ea-5f83-4118-9da8-456a7b9817f3",
        streaming=True,
        clock=[
            start,
            1795523169.1597362,
            1795523169.1798027,
            start + 0.0585942268371582,
            1795523169.2950933,
        ],
        row_ids=[(6, "2026-11-24T12:26:09.416608+00:00")],
    )
    assert run.stream == frames(TOOL_STREAMING)
    assert run.rows == [
        {
            "type": "bot",
            "message": [TOOL_PART, {"type": "plain", "text": "Tool done."}],
            "agent_stats": stats(22, 9, start, 1795523169.2950933, 0.0585942268371582),
        }
    ]


def test_proactive_injection_is_saved_as_its_own_row_before_the_reply() -> None:
    mid = "8c0cf7f3-b8cc-4941-a414-8d5647bc5244"
    file_name = "defd1d2a-e7a7-419b-89bc-e8bddbe30653.txt"
    injected = [
        Emit(plain_event("pic:", streaming=True, message_id=mid)),
        Emit(media_event("image", IMAGE_NAME, streaming=True, message_id=mid), "c2855c89"),
        Emit(media_event("file", file_name, streaming=True, message_id=mid), "44764d1f"),
        Emit(proactive_complete_event("[FILE]" + file_name, message_id=mid)),
    ]
    run = drive(
        [*words("Hello", " again."), Usage(12, 0, 2)],
        session_id="slow-img",
        message_id=mid,
        streaming=True,
        clock=[1000.0, 1000.25, 1001.5],
        row_ids=[(48, "2026-11-24T12:30:19.481811+00:00"), (49, CREATED)],
        injected=injected,
    )
    rest = rf"""
data: {{"type": "plain", "data": " again.", "streaming": true, "chain_type": null, "message_id": "{mid}"}}
data: {{"type": "agent_stats", "data": {{"token_usage": {{"input_other": 12, "input_cached": 0, "output": 2}}, "start_time": 1000.0, "end_time": 1001.5, "time_to_first_token": 0.25}}}}
data: {{"type": "complete", "data": "Hello again.", "reasoning": "", "streaming": true, "message_id": "{mid}"}}
data: {{"type": "message_saved", "data": {{"id": 49, "created_at": "{CREATED}"}}}}
data: {{"type": "end", "data": "", "streaming": false, "message_id": "{mid}"}}
"""
    assert run.stream == frames(PROACTIVE_HEAD) + frames(rest)
    assert run.rows == [
        {
            "type": "bot",
            "message": [
                {"type": "image", "attachment_id": "c2855c89", "filename": IMAGE_NAME},
                {"type": "file", "attachment_id": "44764d1f", "filename": file_name},
                {"type": "plain", "text": "pic:"},
            ],
        },
        {
            "type": "bot",
            "message": [{"type": "plain", "text": "Hello again."}],
            "agent_stats": stats(12, 2, 1000.0, 1001.5, 0.25),
        },
    ]


# --- transcripts from the spec's descriptions -------------------------------------------


def test_non_streaming_tool_call() -> None:
    run = drive(
        [*TOOL_EVENTS, *words("Tool", " done."), Usage(22, 0, 9)],
        session_id="s",
        message_id=MID,
        streaming=False,
        clock=[1000.0, 1795523169.1597362, 1795523169.1798027, 1001.5],
        row_ids=[(7, CREATED)],
    )
    expected = rf"""
data: {{"type": "session_id", "data": null, "session_id": "s"}}
data: {{"type": "plain", "data": "{{\"id\": \"call_abc123\", \"name\": \"list_future_tasks\", \"args\": {{\"query\": \"x\", \"url\": \"http://127.0.0.1:1/\"}}, \"ts\": 1795523169.1597362}}", "streaming": false, "chain_type": "tool_call", "message_id": "{MID}"}}
data: {{"type": "plain", "data": "{{\"id\": \"call_abc123\", \"ts\": 1795523169.1798027, \"result\": \"No cron jobs found.\"}}", "streaming": false, "chain_type": "tool_call_result", "message_id": "{MID}"}}
data: {{"type": "plain", "data": "Tool done.", "streaming": false, "chain_type": null, "message_id": "{MID}"}}
data: {{"type": "message_saved", "data": {{"id": 7, "created_at": "{CREATED}"}}}}
data: {{"type": "agent_stats", "data": {{"token_usage": {{"input_other": 22, "input_cached": 0, "output": 9}}, "start_time": 1000.0, "end_time": 1001.5, "time_to_first_token": 0.0}}}}
data: {{"type": "end", "data": "", "streaming": false, "message_id": "{MID}"}}
"""
    assert run.stream == frames(expected)
    assert run.rows == [
        {"type": "bot", "message": [TOOL_PART, {"type": "plain", "text": "Tool done."}]}
    ]


THINKING: list[ProviderEvent] = [
    ReasoningDelta("Let me"),
    ReasoningDelta(" think."),
    *words("Hello", " there."),
    Usage(12, 0, 6),
]


def test_streaming_reasoning_displayed() -> None:
    run = drive(
        THINKING,
        session_id="s",
        message_id=MID,
        streaming=True,
        display_reasoning=True,
        clock=[1000.0, 1000.25, 1001.5],
        row_ids=[(10, CREATED)],
    )
    expected = rf"""
data: {{"type": "session_id", "data": null, "session_id": "s"}}
data: {{"type": "plain", "data": "Let me", "streaming": true, "chain_type": "reasoning", "message_id": "{MID}"}}
data: {{"type": "plain", "data": " think.", "streaming": true, "chain_type": "reasoning", "message_id": "{MID}"}}
data: {{"type": "plain", "data": "Hello", "streaming": true, "chain_type": null, "message_id": "{MID}"}}
data: {{"type": "plain", "data": " there.", "streaming": true, "chain_type": null, "message_id": "{MID}"}}
data: {{"type": "agent_stats", "data": {{"token_usage": {{"input_other": 12, "input_cached": 0, "output": 6}}, "start_time": 1000.0, "end_time": 1001.5, "time_to_first_token": 0.25}}}}
data: {{"type": "complete", "data": "Hello there.", "reasoning": "Let me think.", "streaming": true, "message_id": "{MID}"}}
data: {{"type": "message_saved", "data": {{"id": 10, "created_at": "{CREATED}"}}}}
data: {{"type": "end", "data": "", "streaming": false, "message_id": "{MID}"}}
"""
    assert run.stream == frames(expected)
    assert run.rows == [
        {
            "type": "bot",
            "message": [{"type": "plain", "text": "Hello there."}],
            "reasoning": "Let me think.",
            "agent_stats": stats(12, 6, 1000.0, 1001.5, 0.25),
        }
    ]


def test_non_streaming_reasoning_displayed_gives_two_rows() -> None:
    run = drive(
        THINKING,
        session_id="s",
        message_id=MID,
        streaming=False,
        display_reasoning=True,
        clock=[1000.0, 1001.5],
        row_ids=[(10, CREATED), (11, CREATED)],
    )
    expected = rf"""
data: {{"type": "session_id", "data": null, "session_id": "s"}}
data: {{"type": "plain", "data": "🤔 思考: Let me think.\n", "streaming": false, "chain_type": null, "message_id": "{MID}"}}
data: {{"type": "message_saved", "data": {{"id": 10, "created_at": "{CREATED}"}}}}
data: {{"type": "plain", "data": "Hello there.", "streaming": false, "chain_type": null, "message_id": "{MID}"}}
data: {{"type": "message_saved", "data": {{"id": 11, "created_at": "{CREATED}"}}}}
data: {{"type": "agent_stats", "data": {{"token_usage": {{"input_other": 12, "input_cached": 0, "output": 6}}, "start_time": 1000.0, "end_time": 1001.5, "time_to_first_token": 0.0}}}}
data: {{"type": "end", "data": "", "streaming": false, "message_id": "{MID}"}}
"""
    assert run.stream == frames(expected)
    assert run.rows == [
        {"type": "bot", "message": [{"type": "plain", "text": "🤔 思考: Let me think.\n"}]},
        {"type": "bot", "message": [{"type": "plain", "text": "Hello there."}]},
    ]


@pytest.mark.parametrize("streaming", [True, False])
def test_hidden_reasoning_is_neither_sent_nor_stored(streaming: bool) -> None:
    run = drive(
        THINKING,
        session_id="s",
        message_id=MID,
        streaming=streaming,
        # Streaming still times the first token, reasoning included.
        clock=[1000.0, 1000.25, 1001.5] if streaming else [1000.0, 1001.5],
        row_ids=[(10, CREATED)],
    )
    assert b"think" not in run.stream
    assert [event["type"] for event in run.events][-2:] == (
        ["complete", "end"] if streaming else ["agent_stats", "end"]
    )
    assert run.rows[0]["message"] == [{"type": "plain", "text": "Hello there."}]
    assert "reasoning" not in run.rows[0]
    if streaming:
        assert run.events[-2]["reasoning"] == ""
        assert run.rows[0]["agent_stats"]["time_to_first_token"] == 0.25


def test_streaming_provider_error_keeps_the_sent_deltas() -> None:
    run = drive(
        words("Hello"),
        session_id="s",
        message_id=MID,
        streaming=True,
        clock=[1000.0, 1000.25, 1001.5],
        row_ids=[(12, CREATED)],
        error="upstream said no",
    )
    expected = rf"""
data: {{"type": "session_id", "data": null, "session_id": "s"}}
data: {{"type": "plain", "data": "Hello", "streaming": true, "chain_type": null, "message_id": "{MID}"}}
data: {{"type": "plain", "data": "LLM 响应错误: upstream said no", "streaming": false, "chain_type": null, "message_id": "{MID}"}}
data: {{"type": "message_saved", "data": {{"id": 12, "created_at": "{CREATED}"}}}}
data: {{"type": "agent_stats", "data": {{"token_usage": {{"input_other": 0, "input_cached": 0, "output": 0}}, "start_time": 1000.0, "end_time": 1001.5, "time_to_first_token": 0.25}}}}
data: {{"type": "end", "data": "", "streaming": false, "message_id": "{MID}"}}
"""
    assert run.stream == frames(expected)
    assert run.rows == [
        {"type": "bot", "message": [{"type": "plain", "text": "LLM 响应错误: upstream said no"}]}
    ]


def test_non_streaming_provider_error_drops_the_unsent_text() -> None:
    run = drive(
        [*TOOL_EVENTS, *words("Hel")],
        session_id="s",
        message_id=MID,
        streaming=False,
        clock=[1000.0, 1795523169.1597362, 1795523169.1798027, 1001.5],
        row_ids=[(12, CREATED)],
        error="All chat models failed: BadRequestError: Error code: 400 - boom",
    )
    error_text = "LLM 响应错误: All chat models failed: BadRequestError: Error code: 400 - boom"
    assert [event.get("chain_type") for event in run.events] == [
        "tool_call",
        "tool_call_result",
        None,
        None,
        None,
    ]
    assert run.events[2] == plain_event(error_text, streaming=False, message_id=MID)
    assert [event["type"] for event in run.events[3:]] == ["agent_stats", "end"]
    assert b'Hel"' not in run.stream
    assert run.rows == [
        {"type": "bot", "message": [TOOL_PART, {"type": "plain", "text": error_text}]}
    ]


MEDIA: list[ProviderEvent] = [
    *words("Here", " it is."),
    MediaReply("image", "/data/in/cat.png", "cat.png"),
    MediaReply("video", "/data/in/clip.mp4", "clip.mp4"),
    Usage(3, 0, 3),
]


def test_streaming_media_reply() -> None:
    run = drive(
        MEDIA,
        session_id="s",
        message_id=MID,
        streaming=True,
        clock=[1000.0, 1000.25, 1001.5],
        row_ids=[(20, CREATED)],
        stored_media=[(IMAGE_NAME, "att-1")],
    )
    expected = rf"""
data: {{"type": "session_id", "data": null, "session_id": "s"}}
data: {{"type": "plain", "data": "Here", "streaming": true, "chain_type": null, "message_id": "{MID}"}}
data: {{"type": "plain", "data": " it is.", "streaming": true, "chain_type": null, "message_id": "{MID}"}}
data: {{"type": "image", "data": "[IMAGE]{IMAGE_NAME}", "streaming": true, "message_id": "{MID}"}}
data: {{"type": "agent_stats", "data": {{"token_usage": {{"input_other": 3, "input_cached": 0, "output": 3}}, "start_time": 1000.0, "end_time": 1001.5, "time_to_first_token": 0.25}}}}
data: {{"type": "complete", "data": "Here it is.", "reasoning": "", "streaming": true, "message_id": "{MID}"}}
data: {{"type": "message_saved", "data": {{"id": 20, "created_at": "{CREATED}"}}}}
data: {{"type": "end", "data": "", "streaming": false, "message_id": "{MID}"}}
"""
    assert run.stream == frames(expected)
    assert run.rows == [
        {
            "type": "bot",
            "message": [
                {"type": "image", "attachment_id": "att-1", "filename": IMAGE_NAME},
                {"type": "plain", "text": "Here it is."},
            ],
            "agent_stats": stats(3, 3, 1000.0, 1001.5, 0.25),
        }
    ]


def test_non_streaming_media_reply_keeps_the_order_one_row_each() -> None:
    run = drive(
        MEDIA,
        session_id="s",
        message_id=MID,
        streaming=False,
        clock=[1000.0, 1001.5],
        row_ids=[(20, CREATED), (21, CREATED)],
        stored_media=[(IMAGE_NAME, "att-1")],
    )
    expected = rf"""
data: {{"type": "session_id", "data": null, "session_id": "s"}}
data: {{"type": "plain", "data": "Here it is.", "streaming": false, "chain_type": null, "message_id": "{MID}"}}
data: {{"type": "message_saved", "data": {{"id": 20, "created_at": "{CREATED}"}}}}
data: {{"type": "image", "data": "[IMAGE]{IMAGE_NAME}", "streaming": false, "message_id": "{MID}"}}
data: {{"type": "message_saved", "data": {{"id": 21, "created_at": "{CREATED}"}}}}
data: {{"type": "agent_stats", "data": {{"token_usage": {{"input_other": 3, "input_cached": 0, "output": 3}}, "start_time": 1000.0, "end_time": 1001.5, "time_to_first_token": 0.0}}}}
data: {{"type": "end", "data": "", "streaming": false, "message_id": "{MID}"}}
"""
    assert run.stream == frames(expected)
    assert run.rows == [
        {"type": "bot", "message": [{"type": "plain", "text": "Here it is."}]},
        {
            "type": "bot",
            "message": [{"type": "image", "attachment_id": "att-1", "filename": IMAGE_NAME}],
        },
    ]


# --- the state machine itself -----------------------------------------------------------


def make_turn(*, streaming: bool = True) -> Turn:
    return Turn(MID, streaming=streaming, display_reasoning=True, clock=lambda: 5.0)


def test_video_and_empty_deltas_produce_nothing() -> None:
    turn = make_turn()
    assert turn.feed(MediaReply("video", "/v.mp4", "v.mp4")) == []
    assert turn.feed(TextDelta("")) == []
    assert turn.feed(ReasoningDelta("")) == []


def test_media_asks_to_be_stored_first() -> None:
    turn = make_turn()
    media = MediaReply("record", "/in/note.wav", "note.wav")
    request = turn.feed(media)
    assert request == StoreMedia(media)
    assert isinstance(request, StoreMedia)
    [emit] = turn.media_stored(request, "abc.wav", "att-9")
    assert emit == Emit(media_event("record", "abc.wav", streaming=True, message_id=MID), "att-9")
    assert emit.event["data"] == "[RECORD]abc.wav"


def test_save_points_are_marked() -> None:
    turn = make_turn(streaming=False)
    assert turn.feed(TextDelta("hi")) == []
    marks = [(emit.event["type"], emit.save_point) for emit in turn.finish()]
    assert marks == [("plain", True), ("agent_stats", False), ("end", False)]


def test_empty_streaming_reply_still_completes() -> None:
    turn = make_turn()
    types = [emit.event["type"] for emit in turn.finish()]
    assert types == ["agent_stats", "complete", "end"]


def test_tool_call_flushes_held_back_text_when_not_streaming() -> None:
    turn = make_turn(streaming=False)
    turn.feed(TextDelta("Checking."))
    out = turn.feed(ToolCall("call_1", "clock", {}))
    assert isinstance(out, list)
    assert out[0].event == plain_event("Checking.", streaming=False, message_id=MID)
    assert json.loads(out[1].event["data"]) == {
        "id": "call_1",
        "name": "clock",
        "args": {},
        "ts": 5.0,
    }


def test_tool_call_data_uses_json_defaults() -> None:
    turn = make_turn()
    out = turn.feed(ToolCall("c", "查询", {"城市": "北京"}))
    assert isinstance(out, list)
    [emit] = out
    assert (
        emit.event["data"]
        == '{"id": "c", "name": "\\u67e5\\u8be2", "args": {"\\u57ce\\u5e02": "\\u5317\\u4eac"}, "ts": 5.0}'
    )
    assert emit.event["streaming"] is False


def test_a_finished_turn_refuses_more() -> None:
    turn = make_turn()
    turn.fail("x")
    with pytest.raises(RuntimeError):
        turn.feed(TextDelta("late"))
    with pytest.raises(RuntimeError):
        turn.finish()
