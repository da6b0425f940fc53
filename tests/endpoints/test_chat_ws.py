"""WebSocket /api/v1/chat/ws over real sockets, driven by the `websockets` library: the
chat protocol of docs/compatibility.md M17 (frames, checks and their order, ids), the chat fixes
that apply to a WS turn (F3, F4, F5), and W1, W3, W4, W5."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from astrlite.chat.live import ProactivePart
from astrlite.compat import SEED, V4_27
from astrlite.endpoints.chat_ws import FrameStyle
from tests.endpoints.test_chat import (
    HOLD_MS,
    ISO_UTC,
    UUID,
    contents,
    history,
    normalise,
    rules_config,
    session_row,
    snapshot,
    transcript,
    wait_for,
)
from tests.support.server import TEST_KEY, Running, running_server
from tests.support.transcripts import NON_STREAMING, STREAMING

WS_PATH = "/api/v1/chat/ws"
HEADERS = {"X-API-Key": TEST_KEY}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("chat-ws")
    extra = {"dup1": {"name": "Dup"}, "dup2": {"name": "Dup"}}
    with running_server(config=rules_config(folder), extra_configs=extra) as running:
        yield running


def ws_url(srv: Running, query: str = "") -> str:
    return srv.url.replace("http://", "ws://") + WS_PATH + query


def open_ws(srv: Running, key: str | None = TEST_KEY, query: str = "") -> ClientConnection:
    headers = {} if key is None else {"X-API-Key": key}
    return connect(ws_url(srv, query), additional_headers=headers, open_timeout=5)


def frame(conn: ClientConnection) -> dict[str, Any]:
    """The next frame, after checking its exact encoding: the original's send_json."""
    raw = conn.recv(timeout=5)
    assert isinstance(raw, str)
    event: dict[str, Any] = json.loads(raw)
    assert raw == json.dumps(event)  # spaces after separators, non-ASCII escaped
    return event


def turn(conn: ClientConnection, body: dict[str, Any]) -> list[dict[str, Any]]:
    conn.send(json.dumps(body))
    events = [frame(conn)]
    while events[-1]["type"] not in ("end", "error"):
        events.append(frame(conn))
    return events


def as_sse(events: list[dict[str, Any]], message_id: str | None = None) -> list[dict[str, Any]]:
    """A WS turn with its two extra ids checked and removed, then normalised like SSE."""
    first = dict(events[0])
    mid = first.pop("message_id")
    assert mid == message_id if message_id else UUID.fullmatch(mid)
    session_id = first["session_id"]
    out = [first]
    for event in events[1:]:
        event = dict(event)
        if event["type"] == "message_saved":
            assert event.pop("session_id") == session_id
        if "message_id" in event:
            assert event["message_id"] == mid
            event["message_id"] = "00000000-0000-4000-8000-000000000000"
        out.append(event)
    return normalise(out)


# -- turns ---------------------------------------------------------------------------


def test_streaming_turn_as_observed(srv: Running) -> None:
    with open_ws(srv) as conn:
        events = turn(
            conn,
            {
                "username": "alice",
                "session_id": "sess-stream-1",
                "message": "hello",
                "message_id": "my-msg-1",
            },
        )
    assert events[0] == {
        "type": "session_id",
        "data": None,
        "session_id": "sess-stream-1",
        "message_id": "my-msg-1",
    }
    assert as_sse(events, "my-msg-1") == transcript(STREAMING)
    saved = events[-2]
    assert list(saved) == ["type", "data", "session_id"]
    assert ISO_UTC.fullmatch(saved["data"]["created_at"])
    rows = contents(srv, "sess-stream-1")
    assert [r["type"] for r in rows] == ["user", "bot"]
    assert rows[1]["message"] == [{"type": "plain", "text": "Hello from fake LLM!"}]


def test_non_streaming_turn_then_more_on_the_same_socket(srv: Running) -> None:
    body = {
        "username": "bob",
        "session_id": "sess-nostream-1",
        "message": "hello",
        "enable_streaming": False,
    }
    with open_ws(srv) as conn:
        first = turn(conn, body)
        second = turn(conn, {**body, "message": "again"})  # open after `end`
        conn.send(json.dumps({"t": "ping"}))
        assert frame(conn) == {"type": "pong"}
    assert as_sse(first) == transcript(NON_STREAMING)
    assert second[-1]["type"] == "end"
    assert first[0]["message_id"] != second[0]["message_id"]
    assert len(history(srv, "sess-nostream-1")) == 4


def test_non_ascii_is_escaped_in_frames(srv: Running) -> None:
    with open_ws(srv) as conn:
        conn.send(
            json.dumps({"username": "zoë", "message": "héllo 你好", "selected_provider": "echo"})
        )
        raw = conn.recv(timeout=5)
        while '"complete"' not in raw:
            raw = conn.recv(timeout=5)
    assert "\\u00e9llo \\u4f60\\u597d" in raw and "é" not in raw


def test_binary_frames_carry_json_too(srv: Running) -> None:
    with open_ws(srv) as conn:
        conn.send(json.dumps({"t": "ping"}).encode())
        assert frame(conn) == {"type": "pong"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        ("", None),
        (0, None),
        (False, None),
        ("  x  ", "  x  "),
        (1.5, "1.5"),
        (12345, "12345"),
        (True, "True"),
    ],
)
def test_message_id(srv: Running, given: Any, expected: str | None) -> None:
    with open_ws(srv) as conn:
        events = turn(
            conn,
            {"username": "ids", "message": "hi", "selected_provider": "echo", "message_id": given},
        )
    mids = {e["message_id"] for e in events if "message_id" in e}
    assert len(mids) == 1
    mid = mids.pop()
    assert mid == expected if expected is not None else UUID.fullmatch(mid)


def test_session_id_is_stripped_everywhere(srv: Running) -> None:
    with open_ws(srv) as conn:
        events = turn(conn, {"username": "pad", "session_id": "  padded-ws  ", "message": "hello"})
    assert events[0]["session_id"] == "padded-ws"
    assert events[-2]["session_id"] == "padded-ws"
    assert session_row(srv, "padded-ws") is not None


# -- the client's messages and the checks, in the original's order -----------------------


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("[1]", ["INVALID_MESSAGE", "message must be an object"]),
        ('"text"', ["INVALID_MESSAGE", "message must be an object"]),
        ("null", ["INVALID_MESSAGE", "message must be an object"]),
        ('{"t": "foo"}', ["INVALID_MESSAGE", "Unsupported message type: foo"]),
        ('{"t": null}', ["INVALID_MESSAGE", "Unsupported message type: None"]),
        ('{"t": true}', ["INVALID_MESSAGE", "Unsupported message type: True"]),
        ('{"t": ["a"]}', ["INVALID_MESSAGE", "Unsupported message type: ['a']"]),
        ('{"message": "hi"}', ["BAD_USER", "Missing key: username"]),
        ('{"username": null, "message": "hi"}', ["BAD_USER", "Missing key: username"]),
        ('{"username": "  ", "message": "hi"}', ["BAD_USER", "username is empty"]),
        ('{"username": "u"}', ["INVALID_MESSAGE", "Missing key: message"]),
        (
            '{"username": "u", "message": null, "session_id": "owned"}',
            ["INVALID_MESSAGE", "Missing key: message"],
        ),
        (
            '{"username": "u", "message": "hi", "session_id": "owned"}',
            ["SESSION_ERROR", "session_id belongs to another username"],
        ),
        (
            '{"username": "u", "message": "hi", "config_id": "nope"}',
            ["CONFIG_ERROR", "config_id not found: nope"],
        ),
        (
            '{"username": "u", "message": "hi", "config_name": "nope"}',
            ["CONFIG_ERROR", "config_name not found: nope"],
        ),
        (
            '{"username": "u", "message": "hi", "config_name": "Dup"}',
            ["CONFIG_ERROR", "config_name is ambiguous, please use config_id: Dup"],
        ),
        (
            '{"username": "u", "message": "   "}',
            ["INVALID_MESSAGE", "Message content is empty (reply only is not allowed)"],
        ),
        (
            '{"username": "u", "message": [{"type": "reply", "message_id": 1}]}',
            ["INVALID_MESSAGE", "Message content is empty (reply only is not allowed)"],
        ),
    ],
)
def test_refused_messages_keep_the_socket_and_change_nothing(
    srv: Running, message: str, error: list[str]
) -> None:
    with open_ws(srv) as conn:
        turn(conn, {"username": "owner", "session_id": "owned", "message": "hello"})
        before = snapshot(srv)
        conn.send(message)
        assert frame(conn) == {"type": "error", "code": error[0], "data": error[1]}
        assert snapshot(srv) == before  # F3
        conn.send(json.dumps({"t": "ping"}))
        assert frame(conn) == {"type": "pong"}


@pytest.mark.parametrize("garbage", ["{", "", "not json", '{"a": 1'])
def test_invalid_json_closes_with_1000_and_no_error_frame(srv: Running, garbage: str) -> None:
    with open_ws(srv) as conn:
        conn.send(garbage)
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_invalid_json_waits_for_the_turn_before_it(srv: Running) -> None:
    with open_ws(srv) as conn:
        conn.send(json.dumps({"username": "order", "message": "slow"}))
        conn.send("{")
        events = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                events.append(frame(conn))
    assert [e["type"] for e in events][-1] == "end"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


# -- auth, in the handler ---------------------------------------------------------------


def auth_failure(srv: Running, key: str | None, query: str = "") -> tuple[dict[str, Any], int, str]:
    with open_ws(srv, key, query) as conn:
        error = frame(conn)
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv(timeout=5)
    rcvd = closed.value.rcvd
    assert rcvd is not None
    return error, rcvd.code, rcvd.reason


def test_auth_failures_are_a_frame_then_1008(srv: Running) -> None:
    im_key = srv.create_key(scopes=["im"])["api_key"]
    for key, message in [
        (None, "Missing API key"),
        ("abk_wrong", "Invalid API key"),
        (im_key, "Insufficient API key scope"),
    ]:
        error, code, reason = auth_failure(srv, key)
        assert error == {"type": "error", "code": "UNAUTHORIZED", "data": message}
        assert (code, reason) == (1008, message)


def test_query_keys_follow_the_option(srv: Running, tmp_path: Path) -> None:
    with open_ws(srv, None, f"?api_key={TEST_KEY}") as conn:
        conn.send(json.dumps({"t": "ping"}))
        assert frame(conn) == {"type": "pong"}
    with running_server(config=rules_config(tmp_path), no_query_keys=True) as strict:
        error, code, reason = auth_failure(strict, None, f"?api_key={TEST_KEY}")
    message = "API keys in the query string are disabled"
    assert error == {"type": "error", "code": "UNAUTHORIZED", "data": message}
    assert (code, reason) == (1008, message)


def test_a_valid_key_is_touched_once(srv: Running) -> None:
    key = srv.create_key(scopes=["chat"])
    with open_ws(srv, key["api_key"]) as conn:
        conn.send(json.dumps({"t": "ping"}))
        assert frame(conn) == {"type": "pong"}
    listed = {k["key_id"]: k for k in srv.key_admin("list_keys")}
    assert listed[key["key_id"]]["last_used_at"] is not None


# -- beyond the original (W1, W3, W4, W5) and the shared queue ---------------------------


def test_pings_during_a_turn_are_answered_at_once(srv: Running) -> None:
    with open_ws(srv) as conn:
        conn.send(json.dumps({"username": "w1", "message": "slow"}))
        assert frame(conn)["type"] == "session_id"
        started = time.monotonic()
        conn.send(json.dumps({"t": "ping"}))
        assert frame(conn) == {"type": "pong"}
        conn.ping(b"frame").wait(5)  # a WS ping frame: its pong, before the turn ends
        assert time.monotonic() - started < HOLD_MS / 1000
        rest = [frame(conn)]
        while rest[-1]["type"] != "end":
            rest.append(frame(conn))


def test_a_turn_whose_socket_drops_is_saved(srv: Running) -> None:
    with open_ws(srv) as conn:
        conn.send(json.dumps({"username": "w4", "session_id": "w4-1", "message": "slow"}))
        assert frame(conn)["type"] == "session_id"
    wait_for(lambda: len(history(srv, "w4-1")) == 2)
    assert contents(srv, "w4-1")[1]["message"] == [{"type": "plain", "text": "held"}]


def test_ws_and_sse_turns_on_one_session_run_in_arrival_order(srv: Running) -> None:
    body = {"username": "mix", "session_id": "mixed", "message": "slow ws"}
    with open_ws(srv) as conn:
        conn.send(json.dumps(body))
        assert frame(conn)["type"] == "session_id"
        sse = httpx.post(
            srv.url + "/api/v1/chat",
            json={**body, "message": "hello"},
            headers={"X-API-Key": TEST_KEY},
            timeout=10,
        )
        rest = [frame(conn)]
        while rest[-1]["type"] != "end":
            rest.append(frame(conn))
    assert sse.status_code == 200 and b'"type": "end"' in sse.content
    texts = [r["message"][0]["text"] for r in contents(srv, "mixed")]
    assert texts == ["slow ws", "held", "hello", "Hello from fake LLM!"]


def test_shutdown_finishes_the_turn_then_closes_1001(tmp_path: Path) -> None:
    with (
        running_server(config=rules_config(tmp_path), shutdown_grace=5) as srv,
        open_ws(srv) as idle,
        open_ws(srv) as busy,
    ):
        busy.send(json.dumps({"username": "w5", "session_id": "w5-1", "message": "slow"}))
        assert frame(busy)["type"] == "session_id"
        stopper = threading.Thread(target=srv.portal.call, args=(srv.server.stop,))
        stopper.start()
        with pytest.raises(ConnectionClosed) as closed_idle:
            idle.recv(timeout=5)
        events = []
        with pytest.raises(ConnectionClosed) as closed_busy:
            while True:
                events.append(frame(busy))
        stopper.join()
    for closed in (closed_idle, closed_busy):
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "Server shutting down")
    assert [e["type"] for e in events][-1] == "end"
    assert events[-3]["data"] == "held"


def test_plain_get_without_upgrade(srv: Running) -> None:
    response = httpx.get(srv.url + WS_PATH, headers={"X-API-Key": TEST_KEY})
    assert response.status_code == 400
    assert (
        response.json()["message"] == "This route speaks WebSocket only: send 'Upgrade: websocket'"
    )
    assert httpx.get(srv.url + WS_PATH).status_code == 401


def test_a_full_session_queue_is_a_processing_error(tmp_path: Path) -> None:
    with running_server(config=rules_config(tmp_path), max_session_queue=1) as srv:
        body = {"username": "q", "session_id": "full", "message": "long"}
        with (
            httpx.stream("POST", srv.url + "/api/v1/chat", json=body, headers=HEADERS) as running,
            httpx.stream("POST", srv.url + "/api/v1/chat", json=body, headers=HEADERS) as waiting,
            open_ws(srv) as conn,
        ):
            conn.send(json.dumps({**body, "message": "hello"}))
            assert frame(conn) == {
                "type": "error",
                "code": "PROCESSING_ERROR",
                "data": "Failed to process message: Too many queued turns for this session",
            }
            for response in (running, waiting):
                response.close()


def test_a_message_pushed_into_a_live_ws_turn(srv: Running) -> None:
    body = {"username": "live", "session_id": "ws-live", "message": "slow", "message_id": "m-1"}
    with open_ws(srv) as conn:
        conn.send(json.dumps(body))
        assert frame(conn)["type"] == "session_id"
        pushed = [ProactivePart("plain", "pushed ✓")]
        # inject() is False until the turn runs (its user row may already be saved); a
        # refused push changes nothing, so ask until the running turn takes it.
        wait_for(lambda: srv.portal.call(srv.services.chat.inject, "ws-live", pushed))
        events = [frame(conn)]
        while events[-1]["type"] != "end":
            events.append(frame(conn))
    assert events[:3] == [
        {
            "type": "plain",
            "data": "pushed ✓",
            "streaming": True,
            "chain_type": None,
            "message_id": "m-1",
        },
        {
            "type": "complete",
            "data": "pushed ✓",
            "streaming": True,
            "chain_type": None,
            "message_id": "m-1",
        },
        {"type": "message_saved", "data": events[2]["data"], "session_id": "ws-live"},
    ]
    assert [e["type"] for e in events[3:]] == [
        "plain",
        "agent_stats",
        "complete",
        "message_saved",
        "end",
    ]


def test_frame_style_follows_the_profile() -> None:
    event = {"type": "plain", "data": "é\ud800"}
    seed = b'{"type": "plain", "data": "\\u00e9\\ud800"}'  # M17: the seed's send_json
    assert FrameStyle.of(SEED).encode(event) == bytes([0x81, len(seed)]) + seed
    assert FrameStyle.of(SEED).invalid_json_close == 1000
    compact = FrameStyle.of(V4_27)
    assert compact.invalid_json_close == 1011
    raw = '{"type":"plain","data":"é\\ud800"}'.encode()  # a lone surrogate stays escaped
    assert compact.encode(event) == bytes([0x81, len(raw)]) + raw
    assert json.loads(raw) == event
