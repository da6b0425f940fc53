"""WebSocket /api/v1/chat/ws under --compat 4.27 (P4, M17) with the `websockets` client:
compact frames with raw UTF-8, the event set of a 4.27 WebSocket turn (run_started, no
user_message_saved, attachment_saved or checkpoint ids, and no empty bot row: G4),
`message` checked before `username`, `flags` read without lax booleans, and invalid
JSON closing with 1011."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.endpoints.test_chat import contents, rules_config
from tests.support.server import TEST_KEY, Running, running_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("chat-ws-427")
    with running_server(config=rules_config(folder), compat="4.27") as running:
        yield running


def open_ws(srv: Running) -> ClientConnection:
    url = srv.url.replace("http://", "ws://") + "/api/v1/chat/ws"
    return connect(url, additional_headers={"X-API-Key": TEST_KEY}, open_timeout=5)


def frame(conn: ClientConnection) -> dict[str, Any]:
    """The next frame, after checking its exact encoding: compact, raw UTF-8."""
    raw = conn.recv(timeout=5)
    assert isinstance(raw, str)
    event: dict[str, Any] = json.loads(raw)
    assert raw == json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return event


def turn(conn: ClientConnection, body: dict[str, Any]) -> list[dict[str, Any]]:
    conn.send(json.dumps(body))
    events = [frame(conn)]
    while events[-1]["type"] not in ("end", "error"):
        events.append(frame(conn))
    return events


def test_a_streaming_turn_has_the_4_27_websocket_events(srv: Running) -> None:
    with open_ws(srv) as conn:
        events = turn(conn, {"username": "ana", "session_id": "w1", "message": "你好 hello"})
    types = [event["type"] for event in events]
    assert types[:2] == ["session_id", "run_started"]
    assert types[-4:] == ["agent_stats", "complete", "message_saved", "end"]
    assert set(types[2:-4]) == {"plain"}
    first, started, saved = events[0], events[1], events[-2]
    assert first["session_id"] == "w1" and started["data"]["run_id"] == first["message_id"]
    assert saved["session_id"] == "w1" and set(saved["data"]) == {"id", "created_at"}
    assert "user_message_saved" not in types and types.count("message_saved") == 1
    rows = contents(srv, "w1")  # G4: the user row and the reply, no empty bot row
    assert [row["type"] for row in rows] == ["user", "bot"] and rows[1]["message"]
    checkpoints = srv.db.reader.execute(
        "SELECT llm_checkpoint_id FROM history WHERE session_id = 'w1'"
    ).fetchall()
    assert [row[0] for row in checkpoints] == [None, None]  # as 4.27 stores WS rows


def test_bot_media_has_no_attachment_saved_over_the_websocket(srv: Running) -> None:
    with open_ws(srv) as conn:
        events = turn(conn, {"username": "ana", "message": "picture"})
    types = [event["type"] for event in events]
    assert "image" in types and "attachment_saved" not in types


@pytest.mark.parametrize(
    ("fields", "streamed"),
    [
        ({"enable_streaming": True, "flags": {"enable_streaming": False}}, False),
        ({"enable_streaming": False, "flags": {"enable_streaming": "false"}}, False),
        ({"flags": {"enable_streaming": "false"}}, True),  # not a bool: the default
        ({"enable_streaming": None}, True),
        ({"enable_streaming": 0}, True),  # not a bool either
    ],
)
def test_flags_are_read_as_raw_json(srv: Running, fields: dict[str, Any], streamed: bool) -> None:
    with open_ws(srv) as conn:
        events = turn(conn, {"username": "ana", "message": "hello", **fields})
    plains = [event for event in events if event["type"] == "plain"]
    assert plains and all(event["streaming"] is streamed for event in plains)


def test_message_is_checked_before_username(srv: Running) -> None:
    with open_ws(srv) as conn:
        assert turn(conn, {"t": "send"}) == [
            {"type": "error", "code": "INVALID_MESSAGE", "data": "Missing key: message"}
        ]
        assert turn(conn, {"message": "hi"}) == [
            {"type": "error", "code": "BAD_USER", "data": "Missing key: username"}
        ]


def test_invalid_json_closes_with_1011_and_no_error_frame(srv: Running) -> None:
    with open_ws(srv) as conn:
        conn.send("{not json")
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


def test_admin_usernames_need_chat_admin(srv: Running) -> None:
    url = srv.url.replace("http://", "ws://") + "/api/v1/chat/ws"
    plain = srv.create_key(["chat"])["api_key"]
    admin = srv.create_key(["chat", "chat:admin"])["api_key"]
    refused = {"type": "error", "code": "INVALID_MESSAGE"}
    with connect(url, additional_headers={"X-API-Key": plain}, open_timeout=5) as conn:
        assert turn(conn, {"username": "astrbot", "message": "hi"}) == [
            {**refused, "data": "username is reserved for an AstrBot administrator"}
        ]
        assert turn(conn, {"username": " ", "message": "hi"}) == [  # the username first
            {"type": "error", "code": "BAD_USER", "data": "username is empty"}
        ]
    with connect(url, additional_headers={"X-API-Key": admin}, open_timeout=5) as conn:
        assert turn(conn, {"username": "astrbot", "message": "hi"})[-1]["type"] == "end"
