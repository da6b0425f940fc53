"""A run's fan-out without sockets: followers get a snapshot then every later event
once; a follower that stops reading is cut at its buffer limit while the run goes on."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

from astrlite.chat.events import end_event, plain_event, run_started_event
from astrlite.chat.framing import SSE
from astrlite.chat.runs import (
    FOLLOWER_BUFFER_CHUNKS,
    RUNNING,
    DisplayContent,
    FinishedRun,
    Run,
)
from astrlite.chat.stream import EventStream
from astrlite.chat.turn import Emit

pytestmark = pytest.mark.anyio
MID = "run-1"


def new_run() -> Run:
    return Run(MID, "s1", "alice", "cp-1", EventStream(b"", 10_000), SSE)


async def read_all(stream: EventStream) -> list[dict[str, Any]]:
    data = b"".join([chunk async for chunk in stream.body(None)])
    return [json.loads(f[len(b"data: ") :]) for f in data.split(b"\n\n") if f]


def delta(text: str) -> Emit:
    return Emit(plain_event(text, streaming=True, message_id=MID))


async def test_a_follower_gets_the_snapshot_then_later_events() -> None:
    run = new_run()
    run.status = RUNNING  # as the runner sets it when the turn starts
    await run.send([Emit(run_started_event(MID))])
    await run.send([delta("Hel"), delta("lo")])
    follower = run.follow()
    await run.send([delta(" there")])
    await run.send([Emit(end_event(MID))])
    run.finish("completed")
    seen = await read_all(follower)
    assert [e["type"] for e in seen] == ["run_snapshot", "plain", "end"]
    snapshot = seen[0]["data"]
    assert snapshot == {
        "run_id": MID,
        "session_id": "s1",
        "llm_checkpoint_id": "cp-1",
        "status": "running",
        "revision": 3,
        "content": {"type": "bot", "message": [{"type": "plain", "text": "Hello"}]},
    }
    assert run.state()["status"] == "completed" and run.revision == 5


async def test_a_follower_that_does_not_read_is_cut() -> None:
    run = new_run()
    follower = run.follow()
    for i in range(FOLLOWER_BUFFER_CHUNKS + 10):
        await run.send([delta(str(i))])  # never waits on the follower
    assert follower.finished
    seen = await read_all(follower)
    assert seen[0]["type"] == "run_snapshot"
    assert len(seen) == FOLLOWER_BUFFER_CHUNKS  # the snapshot and what fitted, no `end`
    again = run.follow()  # it may resume: a fresh snapshot holds everything
    await run.send([Emit(end_event(MID))])
    run.finish("completed")
    resumed = await read_all(again)
    text = resumed[0]["data"]["content"]["message"][0]["text"]
    assert text == "".join(str(i) for i in range(FOLLOWER_BUFFER_CHUNKS + 10))


async def test_a_finished_run_gives_its_snapshot_and_end() -> None:
    run = new_run()
    await run.send([delta("x")])
    run.finish("stopped")
    seen = await read_all(run.follow())
    assert [e["type"] for e in seen] == ["run_snapshot", "end"]
    assert seen[0]["data"]["status"] == "stopped"


async def test_a_finished_run_lets_go_of_its_streams_and_takes_nothing_more() -> None:
    run = new_run()
    run.follow()
    await run.send([delta("Hel"), delta("lo")])
    run.finish("completed")
    assert not [o for o in gc.get_referents(run) if isinstance(o, (EventStream, list))]
    await run.send([delta(" again")])  # after the end: dropped
    state = run.state()
    assert state["content"] == {"type": "bot", "message": [{"type": "plain", "text": "Hello"}]}
    assert (state["status"], state["revision"]) == ("completed", 2)


async def test_a_finished_runs_replay_is_its_snapshot_and_end() -> None:
    run = new_run()
    await run.send([delta("x")])
    run.finish("stopped")
    seen = await read_all(FinishedRun(MID, "alice", run.kept()).follow())
    assert [e["type"] for e in seen] == ["run_snapshot", "end"]
    assert seen[0]["data"] == run.state()


def test_display_content_keeps_arrival_order() -> None:
    content = DisplayContent()
    content.feed(plain_event("pic", streaming=True, message_id=MID), None)
    content.feed(plain_event(":", streaming=True, message_id=MID), None)
    content.feed({"type": "image", "data": "[IMAGE]a.png", "streaming": True}, "att-1")
    content.feed({"type": "image", "data": "[IMAGE]lost.png", "streaming": True}, None)
    content.feed(plain_event("more", streaming=True, message_id=MID), None)
    content.feed(plain_event("think", streaming=True, message_id=MID, chain_type="reasoning"), None)
    content.feed({"type": "agent_stats", "data": {"token_usage": {}}}, None)
    assert content.value() == {
        "type": "bot",
        "message": [
            {"type": "plain", "text": "pic:"},
            {"type": "image", "attachment_id": "att-1", "filename": "a.png"},
            {"type": "plain", "text": "more"},
        ],
        "reasoning": "think",
        "agent_stats": {"token_usage": {}},
    }
