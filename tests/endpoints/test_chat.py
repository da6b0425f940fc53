"""POST /api/v1/chat over real sockets: whole streams against AstrBot's transcripts,
history rows, the validation order and strings (docs/compatibility.md M3, M5, M6) with F2-F7,
F12, F13, F21, and the per-session queue."""

from __future__ import annotations

import functools
import json
import re
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from astrlite.chat.live import ProactivePart
from astrlite.files.attachments import AttachmentRow
from astrlite.options import Options
from astrlite.runtime import StartupError, start
from tests.support.server import TEST_KEY, Running, running_server
from tests.support.transcripts import NON_STREAMING, STREAMING, TOOL_STREAMING
from tests.support.waiting import wait_for

STATIC_KEY_ID = "static:1"  # the key id of running_server's TEST_KEY
HEADERS = {"X-API-Key": TEST_KEY}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EMPTY = "Message content is empty (reply only is not allowed)"
HOLD_MS = 400  # how long the "slow" rule holds a turn, to make others wait
STALL_MS = 3000

RULES: dict[str, Any] = {
    "rules": [
        {"match": "hello", "reply": "Hello from fake LLM!", "usage": {"input": 12, "output": 4}},
        {
            "match": "tool",
            "reply": "Tool done.",
            "tool_call": {
                "name": "list_future_tasks",
                "args": {"query": "x", "url": "http://127.0.0.1:1/"},
                "result": "No cron jobs found.",
            },
            "usage": {"input": 22, "output": 9},
        },
        {
            "match": "think",
            "reasoning": "Let me think.",
            "reply": "Hello from fake LLM!",
            "usage": {"input": 12, "output": 4},
        },
        {"match": "picture", "reply": "pic:", "attachment": {"path": "", "kind": "image"}},
        {"match": "fail", "reply": "Partial answer", "error": "boom"},
        {"regex": "^slow", "reply": "held", "delay_ms": HOLD_MS},
        {"regex": "^long", "reply": "held for long", "delay_ms": HOLD_MS * 2},
        # Holds a session long enough that a loaded machine still fills its queue behind it.
        {"regex": "^stall", "reply": "held", "delay_ms": STALL_MS},
    ]
}


# -- helpers ---------------------------------------------------------------------------


def post(srv: Running, body: Any, key: str = TEST_KEY) -> httpx.Response:
    """A whole chat response (the stream read to its end)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        srv.url + "/api/v1/chat", content=content, headers={"X-API-Key": key}, timeout=10
    )


def frames(raw: bytes) -> list[bytes]:
    assert raw.endswith(b"\n\n"), raw[-50:]
    return raw[:-2].split(b"\n\n")


def events(raw: bytes) -> list[dict[str, Any]]:
    """The data events of a stream, after checking the exact framing of each."""
    out = []
    for frame in frames(raw):
        if frame == b": heartbeat":
            continue
        assert frame.startswith(b"data: "), frame
        text = frame[len(b"data: ") :].decode()
        event = json.loads(text)
        assert text == json.dumps(event, ensure_ascii=False)  # spaces, raw UTF-8, key order
        out.append(event)
    return out


def chat(srv: Running, body: Any, key: str = TEST_KEY) -> list[dict[str, Any]]:
    response = post(srv, body, key)
    assert response.headers["content-type"] == "text/event-stream", response.text
    return events(response.content)


def reply_text(stream: list[dict[str, Any]]) -> str:
    """The whole reply of a streamed turn: its ``complete`` event's data."""
    return str(next(e["data"] for e in stream if e["type"] == "complete"))


def error_of(srv: Running, body: Any, key: str = TEST_KEY) -> str:
    response = post(srv, body, key)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    reply = response.json()
    assert reply["status"] == "error" and reply["data"] is None
    return str(reply["message"])


def normalise(stream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ids and times replaced, after checking their shapes; one message_id per turn."""
    message_ids = {e["message_id"] for e in stream if "message_id" in e}
    assert len(message_ids) <= 1 and all(UUID.fullmatch(m) for m in message_ids)
    out = []
    for event in stream:
        event = json.loads(json.dumps(event))
        if "message_id" in event:
            event["message_id"] = "MID"
        kind, data = event["type"], event["data"]
        if kind == "agent_stats":
            assert data["end_time"] >= data["start_time"] > 0
            assert data["time_to_first_token"] >= 0
            data.update(start_time=0, end_time=0, time_to_first_token=0)
        elif kind == "message_saved":
            assert isinstance(data["id"], int) and ISO_UTC.fullmatch(data["created_at"])
            event["data"] = {"id": "ID", "created_at": "TIME"}
        elif kind in ("image", "record", "file"):
            event["data"] = data[: data.index("]") + 1] + "NAME"
        elif event.get("chain_type") in ("tool_call", "tool_call_result"):
            call = json.loads(data)
            call.update(id="CALL", ts=0)
            event["data"] = json.dumps(call)
        out.append(event)
    return out


def transcript(text: str) -> list[dict[str, Any]]:
    """A transcript observed from AstrBot, normalised like a live stream."""
    return normalise(events(text.strip().encode() + b"\n\n"))


def history(srv: Running, session_id: str) -> list[dict[str, Any]]:
    rows = srv.db.reader.execute(
        "SELECT id, sender_id, sender_name, content FROM history WHERE session_id = ? ORDER BY id",
        (session_id,),
    ).fetchall()
    return [{**dict(row), "content": json.loads(row["content"])} for row in rows]


def contents(srv: Running, session_id: str) -> list[dict[str, Any]]:
    return [row["content"] for row in history(srv, session_id)]


def session_row(srv: Running, session_id: str) -> dict[str, Any] | None:
    row = srv.db.reader.execute(
        "SELECT * FROM sessions WHERE session_id = ?", (session_id,)
    ).fetchone()
    return None if row is None else dict(row)


def snapshot(srv: Running) -> tuple[list[tuple[Any, ...]], ...]:
    reader = srv.db.reader
    return tuple(
        [tuple(row) for row in reader.execute(f"SELECT * FROM {table} ORDER BY 1")]
        for table in ("sessions", "history", "attachments")
    )


def store_attachment(srv: Running, path: Path, name: str, owner: str) -> AttachmentRow:
    store = functools.partial(
        srv.services.attachments.store_copy, path, filename=name, kind=None, owner_key_id=owner
    )
    row: AttachmentRow = srv.portal.call(store)
    return row


# -- fixtures --------------------------------------------------------------------------


def rules_config(folder: Path, **changes: Any) -> dict[str, Any]:
    picture = folder / "sun.png"
    picture.write_bytes(PNG)
    rules = json.loads(json.dumps(RULES))
    rules["rules"][3]["attachment"]["path"] = str(picture)
    rules_file = folder / "rules.json"
    rules_file.write_text(json.dumps(rules))
    providers = [
        {"id": "rules", "type": "scripted", "rules_file": str(rules_file)},
        {"id": "echo", "type": "echo"},
    ]
    return {"provider": "rules", "providers": providers, **changes}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("chat")
    extra = {
        "thinking": {**rules_config(folder), "name": "thinking", "display_reasoning": True},
        "streamy": {"name": "streamy", "streaming": True},
        "dup1": {"name": "Dup"},
        "dup2": {"name": "Dup"},
    }
    with running_server(config=rules_config(folder), extra_configs=extra) as running:
        yield running


@pytest.fixture(scope="module")
def other_key(srv: Running) -> dict[str, Any]:
    created: dict[str, Any] = srv.create_key(scopes=["chat"])
    return created


# -- transcripts (M5, M6) --------------------------------------------------------------

MID = "MID"
STATS: dict[str, Any] = {
    "type": "agent_stats",
    "data": {
        "token_usage": {"input_other": 12, "input_cached": 0, "output": 4},
        "start_time": 0,
        "end_time": 0,
        "time_to_first_token": 0,
    },
}
SAVED = {"type": "message_saved", "data": {"id": "ID", "created_at": "TIME"}}
END = {"type": "end", "data": "", "streaming": False, "message_id": MID}


def session_event(session_id: str) -> dict[str, Any]:
    return {"type": "session_id", "data": None, "session_id": session_id}


def plain(data: str, streaming: bool, chain_type: str | None = None) -> dict[str, Any]:
    return {
        "type": "plain",
        "data": data,
        "streaming": streaming,
        "chain_type": chain_type,
        "message_id": MID,
    }


def complete(data: str, reasoning: str = "") -> dict[str, Any]:
    return {
        "type": "complete",
        "data": data,
        "reasoning": reasoning,
        "streaming": True,
        "message_id": MID,
    }


def hello_deltas() -> list[dict[str, Any]]:
    return [plain(d, True) for d in ("Hello", " from", " fake", " LLM!")]


def test_streaming_reply_matches_the_transcript(srv: Running) -> None:
    response = post(srv, {"username": "alice", "session_id": "sess-stream-1", "message": "hello"})
    headers = response.headers
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["connection"] == "keep-alive"
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    stream = events(response.content)
    assert normalise(stream) == transcript(STREAMING)
    rows = history(srv, "sess-stream-1")
    assert [r["content"]["type"] for r in rows] == ["user", "bot"]
    assert rows[0]["content"] == {"type": "user", "message": [{"type": "plain", "text": "hello"}]}
    assert (rows[0]["sender_id"], rows[0]["sender_name"]) == (
        f"openapi:{STATIC_KEY_ID}:alice",
        "alice",
    )
    assert (rows[1]["sender_id"], rows[1]["sender_name"]) == ("bot", "bot")
    assert rows[1]["content"] == {
        "type": "bot",
        "message": [{"type": "plain", "text": "Hello from fake LLM!"}],
        "agent_stats": stream[5]["data"],
    }
    saved = stream[7]["data"]
    assert saved["id"] == rows[1]["id"]
    created = srv.db.reader.execute(
        "SELECT created_at FROM history WHERE id = ?", (saved["id"],)
    ).fetchone()[0]
    assert saved["created_at"] == created


def test_history_json_is_stored_with_python_defaults(srv: Running) -> None:
    chat(srv, {"username": "alice", "session_id": "sess-json", "message": "héllo"})
    raw = srv.db.reader.execute(
        "SELECT content FROM history WHERE session_id = 'sess-json' ORDER BY id"
    ).fetchone()[0]
    assert raw == '{"type": "user", "message": [{"type": "plain", "text": "h\\u00e9llo"}]}'


def test_non_streaming_reply_matches_the_transcript(srv: Running) -> None:
    body = {
        "username": "alice",
        "session_id": "sess-nostream-1",
        "message": "hello",
        "enable_streaming": False,
    }
    stream = chat(srv, body)
    assert normalise(stream) == transcript(NON_STREAMING)
    assert contents(srv, "sess-nostream-1")[1] == {
        "type": "bot",
        "message": [{"type": "plain", "text": "Hello from fake LLM!"}],
    }


def test_tool_call_matches_the_transcript(srv: Running) -> None:
    stream = chat(srv, {"username": "alice", "session_id": "sess-tool-1", "message": "tool"})
    assert normalise(stream) == transcript(TOOL_STREAMING)
    call = json.loads(stream[1]["data"])
    result = json.loads(stream[2]["data"])
    assert contents(srv, "sess-tool-1")[1] == {
        "type": "bot",
        "message": [
            {
                "type": "tool_call",
                "tool_calls": [
                    {**call, "result": "No cron jobs found.", "finished_ts": result["ts"]}
                ],
            },
            {"type": "plain", "text": "Tool done."},
        ],
        "agent_stats": stream[5]["data"],
    }


def test_tool_call_not_streaming(srv: Running) -> None:
    body = {"username": "alice", "session_id": "tool-2", "message": "tool", "enable_streaming": 0}
    tool_events = transcript(TOOL_STREAMING)[1:3]
    stats = {**STATS, "data": {**STATS["data"], "token_usage": {**STATS["data"]["token_usage"]}}}
    stats["data"]["token_usage"].update(input_other=22, output=9)
    assert normalise(chat(srv, body)) == [
        session_event("tool-2"),
        *tool_events,
        plain("Tool done.", False),
        SAVED,
        stats,
        END,
    ]


def test_reasoning_displayed_streaming(srv: Running) -> None:
    body = {
        "username": "alice",
        "session_id": "think-1",
        "message": "think",
        "config_id": "thinking",
    }
    reasoning = [plain(d, True, "reasoning") for d in ("Let", " me", " think.")]
    assert normalise(chat(srv, body)) == [
        session_event("think-1"),
        *reasoning,
        *hello_deltas(),
        STATS,
        complete("Hello from fake LLM!", "Let me think."),
        SAVED,
        END,
    ]
    assert contents(srv, "think-1")[1]["reasoning"] == "Let me think."


def test_reasoning_displayed_not_streaming_gives_two_rows(srv: Running) -> None:
    body = {
        "username": "alice",
        "session_id": "think-2",
        "message": "think",
        "config_name": "thinking",
        "enable_streaming": False,
    }
    assert normalise(chat(srv, body)) == [
        session_event("think-2"),
        plain("🤔 思考: Let me think.\n", False),
        SAVED,
        plain("Hello from fake LLM!", False),
        SAVED,
        STATS,
        END,
    ]
    assert [c["message"] for c in contents(srv, "think-2")[1:]] == [
        [{"type": "plain", "text": "🤔 思考: Let me think.\n"}],
        [{"type": "plain", "text": "Hello from fake LLM!"}],
    ]


def test_reasoning_hidden_by_default(srv: Running) -> None:
    stream = normalise(
        chat(srv, {"username": "alice", "session_id": "think-3", "message": "think"})
    )
    assert stream == [
        session_event("think-3"),
        *hello_deltas(),
        STATS,
        complete("Hello from fake LLM!"),
        SAVED,
        END,
    ]
    assert "reasoning" not in contents(srv, "think-3")[1]


def bot_media_row(srv: Running, stream: list[dict[str, Any]]) -> AttachmentRow:
    image = next(e for e in stream if e["type"] == "image")
    name = image["data"].removeprefix("[IMAGE]")
    assert re.fullmatch(r"[0-9a-f]{32}\.png", name)
    row = srv.db.reader.execute(
        "SELECT attachment_id FROM attachments WHERE path LIKE ?", (f"%/{name}",)
    ).fetchone()
    found = srv.services.attachments.get(row[0], STATIC_KEY_ID)  # owned by the turn's key
    assert found is not None and found.kind == "image"
    assert srv.services.attachments.absolute(found).read_bytes() == PNG
    return found


def test_media_reply_streaming(srv: Running) -> None:
    stream = chat(srv, {"username": "alice", "session_id": "media-1", "message": "picture"})
    image = {"type": "image", "data": "[IMAGE]NAME", "streaming": True, "message_id": MID}
    stats = json.loads(json.dumps(STATS))
    stats["data"]["token_usage"].update(input_other=6, output=1)
    assert normalise(stream) == [
        session_event("media-1"),
        plain("pic:", True),
        image,
        stats,
        complete("pic:"),
        SAVED,
        END,
    ]
    row = bot_media_row(srv, stream)
    assert contents(srv, "media-1")[1]["message"] == [
        {"type": "image", "attachment_id": row.attachment_id, "filename": row.stored_name},
        {"type": "plain", "text": "pic:"},
    ]


def test_media_reply_not_streaming_saves_each_event(srv: Running) -> None:
    body = {
        "username": "alice",
        "session_id": "media-2",
        "message": "picture",
        "enable_streaming": False,
    }
    stream = chat(srv, body)
    image = {"type": "image", "data": "[IMAGE]NAME", "streaming": False, "message_id": MID}
    kinds = [e["type"] for e in normalise(stream)]
    assert kinds == [
        "session_id",
        "plain",
        "message_saved",
        "image",
        "message_saved",
        "agent_stats",
        "end",
    ]
    assert normalise(stream)[3] == image
    row = bot_media_row(srv, stream)
    assert [c["message"] for c in contents(srv, "media-2")[1:]] == [
        [{"type": "plain", "text": "pic:"}],
        [{"type": "image", "attachment_id": row.attachment_id, "filename": row.stored_name}],
    ]


def test_provider_error_streaming_keeps_deltas_and_sends_the_error(srv: Running) -> None:
    stream = chat(srv, {"username": "alice", "session_id": "fail-1", "message": "fail"})
    stats = json.loads(json.dumps(STATS))
    stats["data"]["token_usage"].update(input_other=0, output=0)
    assert normalise(stream) == [
        session_event("fail-1"),
        plain("Partial", True),
        plain(" answer", True),
        plain("LLM 响应错误: boom", False),
        SAVED,
        stats,
        END,
    ]
    assert contents(srv, "fail-1")[1] == {
        "type": "bot",
        "message": [{"type": "plain", "text": "LLM 响应错误: boom"}],
    }


def test_provider_error_not_streaming(srv: Running) -> None:
    body = {
        "username": "alice",
        "session_id": "fail-2",
        "message": "fail",
        "enable_streaming": False,
    }
    kinds = [(e["type"], e["data"]) for e in normalise(chat(srv, body))]
    assert kinds[1] == ("plain", "LLM 响应错误: boom")
    assert [k for k, _ in kinds] == ["session_id", "plain", "message_saved", "agent_stats", "end"]


def test_unknown_provider_gives_session_id_then_end(srv: Running) -> None:
    body = {
        "username": "alice",
        "session_id": "noprov",
        "message": "hi",
        "selected_provider": "nope",
    }
    assert normalise(chat(srv, body)) == [session_event("noprov"), END]
    assert [c["type"] for c in contents(srv, "noprov")] == ["user"]


def test_selected_provider_and_system_prompt_and_context(srv: Running) -> None:
    body = {
        "username": "alice",
        "session_id": "ctx",
        "message": "one two",
        "selected_provider": "echo",
    }
    stream = chat(srv, body)
    assert reply_text(stream) == "Echo: one two"
    # input words: the system prompt (5), the user's 2
    assert stream[-4]["data"]["token_usage"]["input_other"] == 7
    stream = chat(srv, {**body, "message": "three"})
    # now also the earlier turn: "one two" and "Echo: one two"
    assert stream[-4]["data"]["token_usage"]["input_other"] == 5 + 2 + 3 + 1


def test_enable_streaming_values(srv: Running) -> None:
    def streams(value: Any, **more: Any) -> bool:
        body = {"username": "alice", "message": "hello", **more}
        if value != "absent":
            body["enable_streaming"] = value
        return any(e["type"] == "complete" for e in chat(srv, body))

    assert streams("absent") is True
    assert streams("false") is True  # Python truthiness, as observed
    assert streams(1) is True
    assert streams(0) is False
    assert streams("") is False
    assert streams([]) is False
    assert streams(None) is False  # the default config's streaming
    assert streams(None, config_id="streamy", selected_provider="echo") is True


# -- sessions, F4, F12, F20 ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (456, "456"),
        (True, "True"),
        (1.5, "1.5"),
        ({"a": 1}, "{'a': 1}"),
        ([1], "[1]"),
        ("  padded  ", "padded"),
        ("x" * 10_000, "x" * 10_000),
        ("会话", "会话"),
    ],
)
def test_session_id_is_str_stripped_everywhere(srv: Running, value: Any, expected: str) -> None:
    stream = chat(srv, {"username": "sid-user", "session_id": value, "message": "hello"})
    assert stream[0] == session_event(expected)
    assert session_row(srv, expected) is not None
    assert [c["type"] for c in contents(srv, expected)][-2:] == ["user", "bot"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"session_id": None},
        {"session_id": ""},
        {"session_id": "   "},
        {"session_id": None, "conversation_id": "alias-ignored"},
    ],
)
def test_session_id_absent_null_or_blank_is_a_new_uuid(srv: Running, body: dict[str, Any]) -> None:
    stream = chat(srv, {"username": "uuid-user", "message": "hello", **body})
    assert UUID.fullmatch(stream[0]["session_id"])
    assert session_row(srv, "alias-ignored") is None


def test_conversation_id_is_the_alias_when_session_id_is_absent(srv: Running) -> None:
    stream = chat(
        srv, {"username": "alias-user", "conversation_id": " alias-1 ", "message": "hello"}
    )
    assert stream[0] == session_event("alias-1")
    assert session_row(srv, "alias-1")["creator"] == "alias-user"  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (123, "123"),
        (True, "True"),
        (False, "False"),
        ({"a": 1}, "{'a': 1}"),
        ([1, 2], "[1, 2]"),
        ("  bob  ", "bob"),
        ("u" * 10_000, "u" * 10_000),
    ],
)
def test_username_is_str_stripped(srv: Running, value: Any, expected: str) -> None:
    session_id = f"user-{len(expected)}-{expected[:8]}"
    chat(srv, {"username": value, "session_id": session_id, "message": "hello"})
    row = session_row(srv, session_id)
    assert row is not None and row["creator"] == expected
    user_row = history(srv, session_id)[0]
    assert user_row["sender_id"] == f"openapi:{STATIC_KEY_ID}:{expected}"  # F12
    assert user_row["sender_name"] == expected


def test_session_belongs_to_its_first_username(srv: Running) -> None:
    chat(srv, {"username": "owner", "session_id": "owned", "message": "hello"})
    before = snapshot(srv)
    for username in ("intruder", "Owner", " owner2"):
        body = {"username": username, "session_id": "owned", "message": "hello"}
        assert error_of(srv, body) == "session_id belongs to another username"
    assert snapshot(srv) == before
    chat(srv, {"username": "  owner ", "session_id": "owned", "message": "hello"})  # same user


def test_display_name_is_the_first_text_trimmed(srv: Running) -> None:
    text = "  A first message that is much longer than forty characters  "
    chat(srv, {"username": "titled", "session_id": "title-1", "message": text})
    chat(srv, {"username": "titled", "session_id": "title-1", "message": "second"})
    row = session_row(srv, "title-1")
    assert row is not None and row["display_name"] == text.strip()[:40]


# -- config binding --------------------------------------------------------------------


def test_config_binding_is_sticky_and_default_clears_it(srv: Running) -> None:
    base = {"username": "cfg", "session_id": "cfg-1", "message": "think", "enable_streaming": False}
    assert len(chat(srv, {**base, "config_id": "thinking"})) == 7  # reasoning row + answer row
    assert len(chat(srv, base)) == 7  # still bound
    assert session_row(srv, "cfg-1")["config_id"] == "thinking"  # type: ignore[index]
    assert len(chat(srv, {**base, "config_id": " default "})) == 5  # unbound: reasoning hidden
    assert len(chat(srv, base)) == 5
    assert len(chat(srv, {**base, "config_name": "thinking"})) == 7


def test_config_id_wins_over_config_name(srv: Running) -> None:
    body = {"username": "cfg", "message": "hello", "config_id": "thinking", "config_name": "nope"}
    assert chat(srv, body)[-1]["type"] == "end"
    body = {"username": "cfg", "message": "hello", "config_id": "  ", "config_name": "nope"}
    assert error_of(srv, body) == "config_name not found: nope"


# -- errors of M3, in order, changing nothing (F3) -------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"message": "hello"}, "Missing key: username"),
        ({"username": None, "message": "hello"}, "Missing key: username"),
        ({"username": "", "message": "hello"}, "username is empty"),
        ({"username": "   ", "message": "hello"}, "username is empty"),
        ({"username": "   "}, "username is empty"),
        ({"username": "owner", "session_id": "owned", "message": "hello"}, "ok"),
        (
            {"username": "x", "session_id": " owned ", "config_id": "nope"},
            "session_id belongs to another username",
        ),
        ({"username": "f3", "config_id": "missing"}, "config_id not found: missing"),
        ({"username": "f3", "config_id": "配置", "message": "hi"}, "config_id not found: 配置"),
        ({"username": "f3", "config_name": "NotExists"}, "config_name not found: NotExists"),
        (
            {"username": "f3", "config_name": "Dup", "message": "hello"},
            "config_name is ambiguous, please use config_id: Dup",
        ),
        ({"username": "f3", "config_id": "thinking"}, "Missing key: message or files"),
        ({"username": "f3", "files": ["a"]}, "Missing key: message or files"),
        ({"username": "f3", "message": ""}, EMPTY),
        ({"username": "f3", "message": "   "}, EMPTY),
        ({"username": "f3", "message": None}, EMPTY),
        ({"username": "f3", "message": {"type": "plain", "text": "x"}}, EMPTY),
        ({"username": "f3", "message": 5}, EMPTY),
        ({"username": "f3", "message": []}, EMPTY),
        ({"username": "f3", "message": [1, "text", None, [], True]}, EMPTY),
        (
            {"username": "f3", "message": [{"type": "plain", "text": ""}, {"text": "no type"}]},
            EMPTY,
        ),
        ({"username": "f3", "message": [{"type": "reply", "message_id": 1}]}, EMPTY),
        ({"username": "f3", "message": [{"type": "image", "attachment_id": "nope"}]}, EMPTY),
        ({"username": "f3", "message": [{"type": "video"}, {"type": "at", "text": "x"}]}, EMPTY),
    ],
)
def test_errors_in_order_change_nothing(srv: Running, body: dict[str, Any], message: str) -> None:
    chat(srv, {"username": "owner", "session_id": "owned", "message": "hello"})
    before = snapshot(srv)
    if message == "ok":
        assert chat(srv, body)[-1]["type"] == "end"
        return
    body.setdefault("session_id", "f3-session")
    assert error_of(srv, body) == message
    assert snapshot(srv) == before


def test_config_choice_of_a_rejected_request_is_not_applied(srv: Running) -> None:
    chat(srv, {"username": "f3b", "session_id": "f3-bind", "message": "hello"})
    body = {"username": "f3b", "session_id": "f3-bind", "config_id": "thinking", "message": ""}
    assert error_of(srv, body).startswith("Message content is empty")
    assert session_row(srv, "f3-bind")["config_id"] is None  # type: ignore[index]


def test_http_error_statuses() -> None:
    with running_server(http_errors=True) as srv:
        cases = [
            ({"message": "x"}, 400),
            ({"username": "a", "config_id": "x"}, 404),
            ({"username": "a"}, 400),
            ({"username": "a", "message": ""}, 400),
            (b"[1]", 400),
        ]
        for body, status in cases:
            response = post(srv, body)
            assert response.status_code == status, body
            assert response.json()["status"] == "error"
        chat(srv, {"username": "a", "session_id": "s", "message": "x"})
        assert post(srv, {"username": "b", "session_id": "s", "message": "x"}).status_code == 403


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1]", b'"str"', b"0", b"null", b"[]", b"{", b"\xff\xfe", b"[" * 100_000],
)
def test_bodies_that_are_not_objects(srv: Running, raw: bytes) -> None:
    assert error_of(srv, raw) == "Request body must be a JSON object"


def test_a_message_of_one_mebibyte_is_413(srv: Running) -> None:
    before = snapshot(srv)
    response = post(srv, {"username": "big", "message": "x" * (1024 * 1024)})
    assert response.status_code == 413
    assert response.json()["message"] == "Request body too large (limit 1048576 bytes)"
    assert snapshot(srv) == before


def test_requests_without_the_chat_scope(srv: Running) -> None:
    key = srv.create_key(scopes=["file"])["api_key"]
    response = post(srv, {"username": "a", "message": "x"}, key=key)
    assert response.status_code == 403


# -- parts: F13 replies, F21 attachments -----------------------------------------------


def test_parts_are_parsed_non_strictly(srv: Running) -> None:
    message = [
        1,
        {"type": " plain ", "text": "  spaced  "},
        {"type": "plain", "text": None},
        {"type": "plain"},
        {"type": "nope", "text": "x"},
        {"type": "reply"},
    ]
    chat(srv, {"username": "parts", "session_id": "parts-1", "message": message})
    assert contents(srv, "parts-1")[0]["message"] == [
        {"type": "plain", "text": "  spaced  "},
        {"type": "plain", "text": "None"},  # str(None), as the original
    ]


def test_replies_quote_only_rows_of_the_same_session(srv: Running) -> None:
    chat(srv, {"username": "q", "session_id": "q-other", "message": "hello"})
    foreign = history(srv, "q-other")[1]["id"]
    chat(srv, {"username": "q", "session_id": "q-1", "message": "hello"})
    own = history(srv, "q-1")[1]["id"]
    message = [
        {"type": "reply", "message_id": foreign},
        {"type": "reply", "message_id": str(own)},
        {"type": "reply", "message_id": own, "selected_text": "picked"},
        {"type": "reply", "message_id": 10**30},
        {"type": "reply", "message_id": "abc"},
        {"type": "plain", "text": "what?"},
    ]
    body = {"username": "q", "session_id": "q-1", "message": message, "selected_provider": "echo"}
    stream = chat(srv, body)
    assert contents(srv, "q-1")[2]["message"] == [
        {"type": "reply", "message_id": str(own), "selected_text": ""},
        {"type": "reply", "message_id": own, "selected_text": "picked"},
        {"type": "plain", "text": "what?"},
    ]
    reply = reply_text(stream)
    quoted = "<Quoted Message>\n(bot): Hello from fake LLM!\n</Quoted Message>\n"
    picked = "<Quoted Message>\n(bot): picked\n</Quoted Message>\n"
    assert reply == "Echo: " + quoted + picked + "what?"
    only_foreign = {**body, "message": [{"type": "reply", "message_id": foreign}]}
    assert error_of(srv, only_foreign) == "Message content is empty (reply only is not allowed)"


def test_media_parts_need_an_attachment_of_the_calling_key(
    srv: Running, other_key: dict[str, Any], tmp_path: Path
) -> None:
    picture = tmp_path / "p.png"
    picture.write_bytes(PNG)
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes")
    mine = store_attachment(srv, picture, "cat.png", STATIC_KEY_ID)
    text = store_attachment(srv, notes, "notes.txt", STATIC_KEY_ID)
    theirs = store_attachment(srv, picture, "theirs.png", other_key["key_id"])
    message = [
        {"type": "file", "attachment_id": mine.attachment_id},  # the stored kind wins
        {"type": "image", "attachment_id": theirs.attachment_id},  # F21: dropped
        {"type": "image", "attachment_id": "unknown"},
        {"type": "record", "attachment_id": ""},
        {
            "type": "file",
            "attachment_id": text.attachment_id,
            "filename": "ignored",
            "path": "/etc/passwd",
        },
    ]
    body = {
        "username": "m",
        "session_id": "media-in",
        "message": message,
        "selected_provider": "echo",
    }
    stream = chat(srv, body)
    assert contents(srv, "media-in")[0]["message"] == [
        {"type": "image", "attachment_id": mine.attachment_id, "filename": "cat.png"},
        {"type": "file", "attachment_id": text.attachment_id, "filename": "notes.txt"},
    ]
    assert reply_text(stream) == "Echo: [image: cat.png] [file: notes.txt]"
    # the other key may use its own attachment, and not ours
    only_mine = {**body, "message": [{"type": "image", "attachment_id": mine.attachment_id}]}
    only_mine["session_id"] = "media-other"
    assert error_of(srv, only_mine, key=other_key["api_key"]).startswith("Message content is empty")
    only_theirs = {
        **only_mine,
        "message": [{"type": "image", "attachment_id": theirs.attachment_id}],
    }
    stream = chat(srv, only_theirs, key=other_key["api_key"])
    assert reply_text(stream) == "Echo: [image: theirs.png]"


# -- streams: disconnects, slow readers, heartbeats, the queue -------------------------


def test_reply_is_saved_after_the_client_disconnects(srv: Running) -> None:
    body = {"username": "gone", "session_id": "gone-1", "message": "slow and gone"}
    with httpx.stream("POST", srv.url + "/api/v1/chat", json=body, headers=HEADERS) as response:
        first = next(response.iter_bytes())
        assert first.startswith(b'data: {"type": "session_id"')
    wait_for(lambda: len(history(srv, "gone-1")) == 2)
    assert contents(srv, "gone-1")[1]["message"] == [{"type": "plain", "text": "held"}]


def test_a_client_that_reads_nothing(srv: Running) -> None:
    body = json.dumps({"username": "mute", "session_id": "mute-1", "message": "hello"}).encode()
    head = (
        f"POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nX-API-Key: {TEST_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((srv.host, srv.port), timeout=5) as sock:
        sock.sendall(head + body)
        wait_for(lambda: len(history(srv, "mute-1")) == 2)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
            if raw.endswith(b"0\r\n\r\n"):
                break
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert b'"type": "end"' in raw


def test_heartbeats_on_a_silent_stream(tmp_path: Path) -> None:
    with running_server(config=rules_config(tmp_path), sse_heartbeat=0.05) as srv:
        first = {"username": "hb", "session_id": "hb-1", "message": "slow"}
        with ExitStack() as stack:
            running = stack.enter_context(
                httpx.stream("POST", srv.url + "/api/v1/chat", json=first, headers=HEADERS)
            )
            waiting = post(srv, {**first, "message": "hello"})  # queued behind "slow"
            raw = running.read()
        for stream in (raw, waiting.content):
            parts = frames(stream)
            assert parts[0].startswith(b'data: {"type": "session_id"')
            assert parts[1] == b": heartbeat"
            assert events(stream)[-1]["type"] == "end"
        assert reply_text(events(waiting.content)) == "Hello from fake LLM!"


def test_sessions_run_concurrently(srv: Running) -> None:
    slow = {"username": "lanes", "session_id": "lane-a", "message": "slow"}
    with httpx.stream("POST", srv.url + "/api/v1/chat", json=slow, headers=HEADERS) as held:
        stream = chat(srv, {"username": "lanes", "session_id": "lane-b", "message": "hello"})
        assert stream[-1]["type"] == "end"
        assert len(history(srv, "lane-a")) == 1  # its reply is still being held
        assert events(held.read())[-1]["type"] == "end"


def test_turns_on_one_session_run_in_order_and_none_is_lost(tmp_path: Path) -> None:
    turns = 200
    with running_server(config=rules_config(tmp_path), max_session_queue=turns - 1) as srv:
        streams = []
        with (
            httpx.Client(limits=httpx.Limits(max_connections=None), timeout=30) as client,
            ExitStack() as stack,
        ):
            for n in range(turns):
                text = "long" if n == 0 else f"m{n}"
                body = {
                    "username": "q",
                    "session_id": "queue",
                    "message": text,
                    "selected_provider": "rules",
                }
                response = stack.enter_context(
                    client.stream("POST", srv.url + "/api/v1/chat", json=body, headers=HEADERS)
                )
                chunks = response.iter_bytes()
                first = next(chunks)  # accepted: its stream has started
                assert first.startswith(b'data: {"type": "session_id"')
                streams.append((first, chunks))
            assert len(history(srv, "queue")) == 1  # all queued behind the first
            raws = [first + b"".join(chunks) for first, chunks in streams]
        for n, raw in enumerate(raws):
            complete = [e for e in events(raw) if e["type"] == "complete"]
            assert complete[0]["data"] == ("held for long" if n == 0 else f"Echo: m{n}")
        rows = contents(srv, "queue")
        assert len(rows) == 2 * turns
        expected = ["long"] + [f"m{n}" for n in range(1, turns)]
        assert [r["message"][0]["text"] for r in rows[0::2]] == expected
        assert [r["type"] for r in rows[1::2]] == ["bot"] * turns


def test_one_more_than_the_queue_limit_is_refused(tmp_path: Path) -> None:
    with running_server(config=rules_config(tmp_path), max_session_queue=2) as srv:
        body = {"username": "q", "session_id": "full", "message": "hello"}
        with ExitStack() as stack:
            held = [
                stack.enter_context(
                    httpx.stream(
                        "POST",
                        srv.url + "/api/v1/chat",
                        json={**body, "message": text},
                        headers=HEADERS,
                    )
                )
                for text in ("stall", "hello", "hello")  # one running, two waiting
            ]
            before = snapshot(srv)
            assert error_of(srv, body) == "Too many queued turns for this session"
            assert snapshot(srv) == before
            other = chat(srv, {**body, "session_id": "not-full", "message": "hello"})
            assert other[-1]["type"] == "end"
            for response in held:
                assert events(response.read())[-1]["type"] == "end"
        assert len(contents(srv, "full")) == 6
        assert chat(srv, body)[-1]["type"] == "end"  # room again


# -- proactive messages pushed into a live stream (for /api/v1/im/message) -------------


def test_injected_message_is_streamed_and_saved_as_its_own_row(
    srv: Running, tmp_path: Path
) -> None:
    picture = tmp_path / "p.png"
    picture.write_bytes(PNG)
    media = store_attachment(srv, picture, "pushed.png", STATIC_KEY_ID)
    parts = [
        ProactivePart("plain", "pic:"),
        ProactivePart("image", media.stored_name, media.attachment_id),
    ]
    chat_service = srv.services.chat
    assert srv.portal.call(chat_service.inject, "live-1", parts) is False  # nothing running
    body = {"username": "live", "session_id": "live-1", "message": "slow"}
    with httpx.stream("POST", srv.url + "/api/v1/chat", json=body, headers=HEADERS) as response:
        wait_for(lambda: len(history(srv, "live-1")) == 1)  # the turn is running
        assert srv.portal.call(chat_service.inject, "live-1", parts) is True
        stream = events(response.read())
    assert srv.portal.call(chat_service.inject, "live-1", parts) is False  # it has ended
    image = {"type": "image", "data": "[IMAGE]NAME", "streaming": True, "message_id": MID}
    pushed_complete = {
        "type": "complete",
        "data": "[IMAGE]" + media.stored_name,  # the last part's data
        "streaming": True,
        "chain_type": None,
        "message_id": MID,
    }
    assert [e["type"] for e in normalise(stream)] == [
        "session_id",
        "plain",
        "image",
        "complete",
        "message_saved",
        "plain",
        "agent_stats",
        "complete",
        "message_saved",
        "end",
    ]
    assert normalise(stream)[1:4] == [plain("pic:", True), image, pushed_complete]
    assert [c["message"] for c in contents(srv, "live-1")[1:]] == [
        [
            {"type": "image", "attachment_id": media.attachment_id, "filename": media.stored_name},
            {"type": "plain", "text": "pic:"},
        ],
        [{"type": "plain", "text": "held"}],
    ]
    with pytest.raises(ValueError):
        chat_service.inject("live-1", [ProactivePart("video", "v.mp4", "x")])


def test_a_provider_that_cannot_be_built_stops_the_start(tmp_path: Path) -> None:
    config = {
        "provider": "rules",
        "providers": [{"id": "rules", "type": "scripted", "rules_file": "no.json"}],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        StartupError, match=r"^config\.json: providers\[0\]: .*no\.json: cannot read"
    ):
        start(Options(port=0, data_dir=str(tmp_path)), {})
