"""POST /api/v1/chat through the openai provider against a fake upstream that speaks
OpenAI's real wire format: the transcripts must equal AstrBot's
(docs/compatibility.md M5, M6)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio.from_thread
import pytest

from tests.endpoints.test_chat import chat, contents, normalise, transcript
from tests.fakes.openai_upstream import (
    OpenAIUpstream,
    Reply,
    completion,
    delta,
    error_body,
    openai_upstream,
    usage,
    usage_chunk,
)
from tests.support.server import running_server
from tests.support.transcripts import NON_STREAMING, STREAMING

TOKENS = ("Hello", " from", " fake", " LLM!")
DONE = b"data: [DONE]\n\n"


@pytest.fixture
def upstream() -> Iterator[tuple[OpenAIUpstream, anyio.from_thread.BlockingPortal]]:
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(openai_upstream()) as fake,
    ):
        yield fake, portal


def served(fake: OpenAIUpstream, **config: Any) -> Any:
    provider = {
        "id": "llm",
        "type": "openai",
        "base_url": fake.base_url,
        "model": "qwen2.5",
        "api_key": "sk-test-0123456789",
        "timeout": 5,
    }
    return running_server(config={"provider": "llm", "providers": [provider], **config})


def streamed_reply() -> Reply:
    return Reply(parts=[*(delta(t) for t in TOKENS), usage_chunk(12, 4), DONE])


def test_streaming_transcript_equals_astrbots(upstream: Any) -> None:
    fake, _ = upstream
    fake.replies.append(streamed_reply())
    with served(fake) as srv:
        stream = chat(srv, {"username": "alice", "session_id": "sess-stream-1", "message": "hi"})
        assert normalise(stream) == transcript(STREAMING)
        assert contents(srv, "sess-stream-1")[1]["message"] == [
            {"type": "plain", "text": "Hello from fake LLM!"}
        ]
    sent = fake.sent_json()
    assert (sent["model"], sent["stream"], sent["stream_options"]) == (
        "qwen2.5",
        True,
        {"include_usage": True},
    )
    assert sent["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert fake.requests[0].header("authorization") == "Bearer sk-test-0123456789"


def test_non_streaming_transcript_equals_astrbots(upstream: Any) -> None:
    fake, _ = upstream
    body = completion("Hello from fake LLM!", used=usage(12, 4))
    fake.replies.append(Reply(content_type="application/json", parts=[body]))
    with served(fake) as srv:
        stream = chat(
            srv,
            {
                "username": "alice",
                "session_id": "sess-nostream-1",
                "message": "hi",
                "enable_streaming": False,
            },
        )
    assert normalise(stream) == transcript(NON_STREAMING)
    assert fake.sent_json()["stream"] is False


def test_upstream_error_is_the_f7_reply(upstream: Any) -> None:
    fake, _ = upstream
    fake.replies.append(
        Reply(
            status=401,
            content_type="application/json",
            parts=[error_body("Incorrect API key provided")],
        )
    )
    with served(fake) as srv:
        stream = chat(srv, {"username": "alice", "message": "hi"})
    assert [e["type"] for e in stream] == [
        "session_id",
        "plain",
        "message_saved",
        "agent_stats",
        "end",
    ]
    assert (
        stream[1]["data"] == "LLM 响应错误: upstream returned HTTP 401: Incorrect API key provided"
    )
    assert stream[1]["streaming"] is False


def test_stream_cut_midway_keeps_sent_deltas_then_errors(upstream: Any) -> None:
    fake, _ = upstream
    fake.replies.append(Reply(parts=[delta("Hello"), delta(" there")], end="cut"))
    with served(fake) as srv:
        stream = chat(srv, {"username": "alice", "message": "hi"})
    kinds = [(e["type"], e.get("streaming")) for e in stream]
    assert kinds[:3] == [("session_id", None), ("plain", True), ("plain", True)]
    assert kinds[3:] == [
        ("plain", False),
        ("message_saved", None),
        ("agent_stats", None),
        ("end", False),
    ]
    assert str(stream[3]["data"]).startswith("LLM 响应错误: ")


def test_selected_model_and_history_reach_the_upstream(upstream: Any) -> None:
    fake, _ = upstream
    fake.replies += [streamed_reply(), streamed_reply()]
    with served(fake, context_turns=5) as srv:
        first = chat(srv, {"username": "bob", "message": "first"})
        session = first[0]["session_id"]
        chat(
            srv,
            {
                "username": "bob",
                "session_id": session,
                "message": "second",
                "selected_model": "other-model",
            },
        )
    server = fake.server
    assert server is not None and server.accepted == 1  # the second turn reused the connection
    sent = fake.sent_json()
    assert sent["model"] == "other-model"
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][-1]["content"] == "second"


def test_pooled_upstream_connection_closes_with_the_server(upstream: Any) -> None:
    fake, _ = upstream
    fake.replies.append(
        Reply(content_type="application/json", parts=[completion("ok", used=usage(1, 1))])
    )
    with served(fake) as srv:
        chat(srv, {"username": "carol", "message": "hi", "enable_streaming": False})
    server = fake.server
    assert server is not None
    deadline = time.monotonic() + 5
    while server.closed < server.accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.accepted >= 1 and server.closed == server.accepted
