"""POST /api/v1/chat under --compat 4.27 over real sockets: the observed transcripts
(whole streams, ids and times normalised after checking their shapes), the event order
with media, errors and stops, `flags` and `enable_streaming`, the 422 bodies (P4),
the envelope bytes (M1) and the Bearer-first key carriers (M4, P4) of docs/compatibility.md."""

# ruff: noqa: E501  (observed bodies, one per line)

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from astrlite.chat.live import ProactivePart
from astrlite.files.attachments import AttachmentRow
from tests.endpoints.test_chat import (
    ISO_UTC,
    PNG,
    UUID,
    events,
    rules_config,
    store_attachment,
)
from tests.support.server import TEST_KEY, Running, running_server
from tests.support.transcripts_427 import NON_STREAMING, STREAMING
from tests.support.waiting import wait_for

HEADERS = {"X-API-Key": TEST_KEY}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("chat427")
    extra = {"quiet": {"name": "quiet", "streaming": False}}
    with running_server(config=rules_config(folder), extra_configs=extra, compat="4.27") as running:
        yield running


def post(srv: Running, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(HEADERS if headers is None else headers)}
    return httpx.post(srv.url + "/api/v1/chat", content=content, headers=sent, timeout=10)


def chat(srv: Running, body: Any) -> list[dict[str, Any]]:
    response = post(srv, body)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8", response.text
    return events(response.content)


def normalise(stream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ids and times replaced after checking their shapes: one message_id (= run_id) and
    one llm_checkpoint_id per turn."""
    message_ids = {e["message_id"] for e in stream if "message_id" in e}
    checkpoints = {
        e["data"]["llm_checkpoint_id"]
        for e in stream
        if e["type"] in ("user_message_saved", "message_saved")
    }
    assert len(message_ids) <= 1 and all(UUID.fullmatch(m) for m in message_ids)
    assert len(checkpoints) <= 1 and all(UUID.fullmatch(c) for c in checkpoints)
    out = []
    for event in stream:
        event = json.loads(json.dumps(event))
        if "message_id" in event:
            event["message_id"] = "MID"
        kind, data = event["type"], event["data"]
        if kind == "run_started":
            assert data["run_id"] in message_ids
            data["run_id"] = "MID"
        elif kind == "agent_stats":
            assert data["end_time"] >= data["start_time"] > 0
            data.update(start_time=0, end_time=0, time_to_first_token=0)
        elif kind in ("message_saved", "user_message_saved"):
            assert isinstance(data["id"], int) and ISO_UTC.fullmatch(data["created_at"])
            data.update(id="ID", created_at="TIME", llm_checkpoint_id="CHECKPOINT")
        elif kind == "attachment_saved":
            assert UUID.fullmatch(data["id"])
            data["id"] = "ATTACHMENT"
        elif kind in ("image", "record", "file"):
            event["data"] = data[: data.index("]") + 1] + "NAME"
        out.append(event)
    return out


def transcript(text: str) -> list[dict[str, Any]]:
    return normalise(events(text.strip().encode() + b"\n\n"))


def rows(srv: Running, session_id: str) -> list[dict[str, Any]]:
    found = srv.db.reader.execute(
        "SELECT id, content, llm_checkpoint_id FROM history WHERE session_id = ? ORDER BY id",
        (session_id,),
    ).fetchall()
    return [{**dict(row), "content": json.loads(row["content"])} for row in found]


# -- transcripts (M5, P4) ----------------------------------------------------------------


def test_streaming_reply_matches_the_transcript(srv: Running) -> None:
    response = post(srv, {"username": "alice", "session_id": "tr-stream", "message": "hello"})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["transfer-encoding"] == "chunked"
    stream = events(response.content)
    assert normalise(stream) == transcript(STREAMING)
    user, bot = rows(srv, "tr-stream")
    checkpoint = stream[1]["data"]["llm_checkpoint_id"]
    assert user["llm_checkpoint_id"] == bot["llm_checkpoint_id"] == checkpoint
    assert stream[1]["data"]["id"] == user["id"] and stream[9]["data"]["id"] == bot["id"]
    assert stream[2]["data"]["run_id"] == stream[2]["message_id"] == stream[-1]["message_id"]
    assert bot["content"] == {
        "type": "bot",
        "message": [{"type": "plain", "text": "Hello from fake LLM!"}],
        "agent_stats": stream[7]["data"],
    }


def test_non_streaming_reply_matches_the_transcript(srv: Running) -> None:
    body = {
        "username": "alice",
        "session_id": "tr-nostream",
        "message": "hello",
        "enable_streaming": False,
    }
    stream = chat(srv, body)
    assert normalise(stream) == transcript(NON_STREAMING)
    assert rows(srv, "tr-nostream")[1]["content"] == {  # the stored row includes agent_stats
        "type": "bot",
        "message": [{"type": "plain", "text": "Hello from fake LLM!"}],
        "agent_stats": stream[3]["data"],
    }


def kinds(stream: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in stream]


def test_attachment_saved_follows_each_bot_media_event(srv: Running) -> None:
    streamed = chat(srv, {"username": "alice", "message": "picture"})
    assert kinds(streamed) == [
        "session_id",
        "user_message_saved",
        "run_started",
        "plain",
        "image",
        "attachment_saved",
        "agent_stats",
        "complete",
        "message_saved",
        "end",
    ]
    saved = streamed[5]["data"]
    assert saved["type"] == "image"
    session_id = streamed[0]["session_id"]
    assert [p["type"] for p in rows(srv, session_id)[1]["content"]["message"]] == [
        "plain",
        "image",
    ]  # arrival order (4.22: media first)
    stored = srv.services.attachments.get(saved["id"], "static:1")
    assert stored is not None and streamed[4]["data"] == "[IMAGE]" + stored.stored_name
    quiet = chat(srv, {"username": "alice", "message": "picture", "enable_streaming": False})
    # Not observed: the text held back before media goes out first (as in 4.22), and
    # agent_stats comes before the closing events.
    assert kinds(quiet)[3:] == [
        "plain",
        "message_saved",
        "image",
        "attachment_saved",
        "message_saved",
        "agent_stats",
        "end",
    ]


def test_provider_error_is_the_reply_text(srv: Running) -> None:
    streamed = chat(srv, {"username": "alice", "session_id": "err-427", "message": "fail"})
    assert kinds(streamed)[-5:] == ["agent_stats", "plain", "complete", "message_saved", "end"]
    assert streamed[-4]["data"] == streamed[-3]["data"] == "LLM 响应错误: boom"
    assert streamed[-4]["streaming"] is True
    quiet = chat(srv, {"username": "alice", "message": "fail", "enable_streaming": False})
    assert kinds(quiet)[-4:] == ["agent_stats", "plain", "message_saved", "end"]
    assert quiet[-3]["data"] == "LLM 响应错误: boom" and quiet[-3]["streaming"] is False


def test_unknown_provider_says_so_in_the_reply(srv: Running) -> None:
    stream = chat(srv, {"username": "alice", "message": "hello", "selected_provider": "nope"})
    assert kinds(stream) == [
        "session_id",
        "user_message_saved",
        "run_started",
        "plain",
        "message_saved",
        "end",
    ]
    assert stream[3]["data"] == (
        "LLM 请求失败：未找到指定的提供商 `nope`。请检查提供商配置或重新选择可用模型。"
    )


# -- flags and enable_streaming (P4 request_flags, M14) ----------------------------------


@pytest.mark.parametrize(
    ("fields", "streams"),
    [
        ({}, True),
        ({"enable_streaming": None}, True),  # null streams, whatever the config says
        ({"enable_streaming": "false"}, False),
        ({"enable_streaming": 0}, False),
        ({"enable_streaming": "true"}, True),
        ({"enable_streaming": True, "flags": {"enable_streaming": False}}, False),
        ({"enable_streaming": False, "flags": {"enable_streaming": "1"}}, True),
        ({"enable_streaming": False, "flags": {}}, False),
        ({"enable_streaming": False, "flags": None}, False),
        ({"flags": {"enable_inline_genui": False, "enable_default_system_prompt": 0}}, True),
    ],
)
def test_streaming_flags(srv: Running, fields: dict[str, Any], streams: bool) -> None:
    body = {"username": "alice", "message": "hello", "config_id": "quiet", **fields}
    stream = chat(srv, body)
    assert ("complete" in kinds(stream)) is streams


# -- 422 bodies (P4) --------------------------------------------------------------------


def detail(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    assert not response.content.endswith(b"\n")
    found: list[dict[str, Any]] = response.json()["detail"]
    return found


VALID = {"username": "alice", "message": "hello"}
NOT_OBJECT = "Input should be a valid dictionary or object to extract fields from"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {**VALID, "username": 123},
            '{"detail":[{"type":"string_type","loc":["body","username"],"msg":"Input should be a valid string","input":123}]}',
        ),
        (
            {**VALID, "session_id": 456},
            '{"detail":[{"type":"string_type","loc":["body","session_id"],"msg":"Input should be a valid string","input":456}]}',
        ),
        (
            {**VALID, "enable_streaming": "maybe"},
            '{"detail":[{"type":"bool_parsing","loc":["body","enable_streaming"],"msg":"Input should be a valid boolean, unable to interpret input","input":"maybe"}]}',
        ),
        (
            {**VALID, "flags": {"enable_streaming": None}},
            '{"detail":[{"type":"bool_type","loc":["body","flags","enable_streaming"],"msg":"Input should be a valid boolean","input":null}]}',
        ),
        (
            {**VALID, "flags": "x"},
            '{"detail":[{"type":"model_attributes_type","loc":["body","flags"],"msg":"Input should be a valid dictionary or object to extract fields from","input":"x"}]}',
        ),
        (
            [1],
            '{"detail":[{"type":"model_attributes_type","loc":["body"],"msg":"Input should be a valid dictionary or object to extract fields from","input":[1]}]}',
        ),
        (
            b'{"a":1,}',
            '{"detail":[{"type":"json_invalid","loc":["body",7],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting property name enclosed in double quotes"}}]}',
        ),
        (
            b"",
            '{"detail":[{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}',
        ),
    ],
)
def test_validation_errors_are_fastapi_422s(srv: Running, body: Any, expected: str) -> None:
    response = post(srv, body)
    detail(response)
    assert response.text == expected


def test_every_field_problem_is_listed_and_nothing_changes(srv: Running) -> None:
    before = srv.db.reader.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    body = {
        "username": 1,
        "session_id": 2,
        "enable_streaming": [],
        "flags": {"enable_streaming": "x"},
    }
    found = detail(post(srv, body))
    assert [(d["type"], d["loc"]) for d in found] == [
        ("string_type", ["body", "username"]),
        ("string_type", ["body", "session_id"]),
        ("bool_type", ["body", "enable_streaming"]),
        ("bool_parsing", ["body", "flags", "enable_streaming"]),
    ]
    after = srv.db.reader.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    assert before == after


def test_a_body_not_sent_as_json_is_read_as_a_string(srv: Running) -> None:
    raw = json.dumps(VALID).encode()
    response = httpx.post(
        srv.url + "/api/v1/chat",
        content=raw,
        headers={**HEADERS, "Content-Type": "text/plain"},
        timeout=10,
    )
    assert detail(response) == [
        {"type": "model_attributes_type", "loc": ["body"], "msg": NOT_OBJECT, "input": raw.decode()}
    ]


# -- envelope bytes (M1) and business errors --------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"message": "hi"}, "Missing key: username"),
        ({"username": "  ", "message": "hi"}, "username is empty"),
        ({"username": "alice", "config_id": "nope", "message": "hi"}, "config_id not found: nope"),
        (
            {"username": "alice", "config_name": "nope", "message": "hi"},
            "config_name not found: nope",
        ),
        ({"username": "alice"}, "Missing key: message or files"),
        (
            {"username": "alice", "message": ""},
            "Message content is empty (reply only is not allowed)",
        ),
    ],
)
def test_business_errors_have_no_data_key(srv: Running, body: Any, message: str) -> None:
    response = post(srv, body)
    assert response.status_code == 200
    expected = json.dumps(
        {"status": "error", "message": message}, separators=(",", ":"), ensure_ascii=False
    )
    assert response.content == expected.encode()


def test_session_of_another_username(srv: Running) -> None:
    chat(srv, {"username": "owner", "session_id": "taken-427", "message": "hello"})
    response = post(srv, {"username": "thief", "session_id": "taken-427", "message": "hello"})
    assert (
        response.content == b'{"status":"error","message":"session_id belongs to another username"}'
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"session_id": "taken-427", "config_id": "nope"}, "Missing key: username"),
        (
            {"username": "thief", "session_id": "taken-427", "config_id": "nope"},
            "session_id belongs to another username",
        ),
        (
            {"username": "owner", "session_id": "taken-427", "config_id": "nope"},
            "config_id not found: nope",
        ),
        (
            {"username": "owner", "config_name": "nope", "message": ""},
            "config_name not found: nope",
        ),
        (
            {"username": "owner", "message": ""},
            "Message content is empty (reply only is not allowed)",
        ),
    ],
)
def test_errors_come_in_the_observed_order(srv: Running, body: Any, message: str) -> None:
    chat(srv, {"username": "owner", "session_id": "taken-427", "message": "hello"})
    response = post(srv, body)
    assert response.json() == {"status": "error", "message": message}


def test_auth_errors_and_raw_utf8_success(srv: Running) -> None:
    response = post(srv, VALID, headers={})
    assert (response.status_code, response.content) == (
        401,
        b'{"status":"error","message":"Missing API key"}',
    )
    assert response.headers["content-length"] == "46"
    listed = httpx.get(
        srv.url + "/api/v1/chat/sessions", params={"username": "alice"}, headers=HEADERS
    )
    assert listed.content.startswith(b'{"status":"ok","message":null,"data":{"sessions":[')
    assert not listed.content.endswith(b"\n")
    chat(srv, {"username": "ünï", "session_id": "utf8-427", "message": "hello"})
    named = httpx.get(
        srv.url + "/api/v1/chat/sessions", params={"username": "ünï"}, headers=HEADERS
    )
    assert '"creator":"ünï"'.encode() in named.content


def test_bearer_is_the_only_carrier_looked_at_when_present(srv: Running) -> None:
    url = srv.url + "/api/v1/chat/sessions?username=alice"
    bad = {"Authorization": "Bearer abk_bad"}
    assert httpx.get(url + f"&api_key={TEST_KEY}", headers=bad).status_code == 401
    assert (
        httpx.get(
            url + "&api_key=abk_bad", headers={"Authorization": f"ApiKey {TEST_KEY}"}
        ).status_code
        == 200
    )
    assert httpx.get(url + "&api_key=abk_bad", headers={"X-API-Key": TEST_KEY}).status_code == 401
    assert httpx.get(url + f"&api_key=&key={TEST_KEY}").status_code == 200


def test_the_seed_keeps_its_carrier_order() -> None:
    with running_server() as seed:
        url = seed.url + f"/api/v1/chat/sessions?username=alice&api_key={TEST_KEY}"
        assert httpx.get(url, headers={"Authorization": "Bearer abk_bad"}).status_code == 200


def test_heartbeat_default_is_one_second_under_4_27(srv: Running) -> None:
    assert srv.services.sse_heartbeat == 1.0
    with running_server(compat="4.22") as seed:
        assert seed.services.sse_heartbeat == 10.0
    with running_server(compat="4.27", sse_heartbeat=0) as off:
        assert off.services.sse_heartbeat is None


def test_heartbeats_while_the_provider_is_silent(tmp_path: Path) -> None:
    with running_server(config=rules_config(tmp_path), compat="4.27", sse_heartbeat=0.05) as srv:
        raw = post(srv, {"username": "alice", "message": "slow"}).content
    frames = raw[:-2].split(b"\n\n")
    assert [
        f.split(b'"type": "')[1].split(b'"')[0] if f.startswith(b"data") else f for f in frames[:4]
    ] == [
        b"session_id",
        b"user_message_saved",
        b"run_started",
        b": heartbeat",
    ]
    assert re.search(rb'"type": "end"', frames[-1])


def picture_and_report(srv: Running, tmp_path: Path) -> tuple[AttachmentRow, AttachmentRow]:
    """An image stored as pushed.png and a file stored as report.txt, owned by the key."""
    picture = tmp_path / "p.png"
    picture.write_bytes(PNG)
    report = tmp_path / "r.txt"
    report.write_text("numbers")
    return (
        store_attachment(srv, picture, "pushed.png", "static:1"),
        store_attachment(srv, report, "report.txt", "static:1"),
    )


def test_a_message_pushed_into_a_live_turn(srv: Running, tmp_path: Path) -> None:
    """M12 (proactive message), P4 and R1: attachment_saved after the pushed image,
    the turn's checkpoint on its row, and a follower's snapshot that shows it."""
    media, document = picture_and_report(srv, tmp_path)
    parts = [
        ProactivePart("plain", "pic:"),
        ProactivePart("image", media.stored_name, media.attachment_id, "pushed.png"),
        ProactivePart("file", document.stored_name, document.attachment_id, "report.txt"),
    ]
    chat_service = srv.services.chat
    body = {"username": "live", "session_id": "live-427", "message": "slow"}
    with httpx.stream(
        "POST", srv.url + "/api/v1/chat", json=body, headers=HEADERS, timeout=10
    ) as response:
        lines = response.iter_lines()
        while "run_started" not in next(lines):
            pass
        run_id = srv.portal.call(chat_service.active_runs, "live-427")[0].run_id
        assert srv.portal.call(chat_service.inject, "live-427", parts) is True
        wait_for(lambda: len(rows(srv, "live-427")) == 2)  # the pushed row is saved
        resumed = httpx.get(
            srv.url + f"/api/v1/chat/runs/{run_id}/stream",
            params={"username": "live"},
            headers=HEADERS,
            timeout=10,
        )
        rest = "\n".join(lines)
    stream = events(rest.encode().strip() + b"\n\n")
    assert kinds(stream)[:8] == [
        "plain",
        "image",
        "attachment_saved",
        "file",
        "attachment_saved",
        "complete",
        "message_saved",
        "plain",
    ]
    assert stream[2]["data"] == {"id": media.attachment_id, "type": "image"}
    assert stream[3]["data"] == f"[FILE]{document.stored_name}|report.txt"
    assert stream[5]["data"] == stream[3]["data"]  # the last part's data
    pushed_row = rows(srv, "live-427")[1]
    assert stream[6]["data"]["llm_checkpoint_id"] == pushed_row["llm_checkpoint_id"]
    assert pushed_row["content"]["message"] == [  # arrival order; files keep both names
        {"type": "plain", "text": "pic:"},
        {"type": "image", "attachment_id": media.attachment_id, "filename": media.stored_name},
        {
            "type": "file",
            "attachment_id": document.attachment_id,
            "filename": "report.txt",
            "stored_filename": document.stored_name,
        },
    ]
    snapshot = events(resumed.content)[0]["data"]
    assert snapshot["content"]["message"][:2] == [
        {"type": "plain", "text": "pic:"},
        {"type": "image", "attachment_id": media.attachment_id, "filename": media.stored_name},
    ]


def test_a_message_saved_to_an_idle_session_keeps_both_names(srv: Running, tmp_path: Path) -> None:
    """§6.2 and §10.5 of the 4.27 observations: sent to a webchat session with no live
    turn, each media part is saved with the upload's name as ``filename`` and the
    stored copy's name as ``stored_filename``."""
    media, document = picture_and_report(srv, tmp_path)
    body = {
        "umo": "webchat:FriendMessage:idle-427",
        "message": [
            {"type": "plain", "text": "pic:"},
            {"type": "image", "attachment_id": media.attachment_id},
            {"type": "file", "attachment_id": document.attachment_id},
        ],
    }
    response = httpx.post(srv.url + "/api/v1/im/messages", json=body, headers=HEADERS)
    assert response.json()["status"] == "ok"
    (row,) = rows(srv, "idle-427")
    plain, image, file = row["content"]["message"]
    assert plain == {"type": "plain", "text": "pic:"}
    for part, original, kind in ((image, "pushed.png", "image"), (file, "report.txt", "file")):
        copy = srv.services.attachments.get(part["attachment_id"], "static:1")
        assert copy is not None and copy.attachment_id not in (
            media.attachment_id,
            document.attachment_id,
        )
        assert part == {
            "type": kind,
            "attachment_id": copy.attachment_id,
            "filename": original,
            "stored_filename": copy.stored_name,
        }
