"""POST /api/v1/im/message over real sockets (docs/compatibility.md M3, M11, M12; F2,
F13, F16, F21): every check and string in order, each platform against a fake of its service
(Telegram Bot API, OneBot v11, a webhook receiver), platforms that hang, answer HTML or
close the connection, webchat delivery with and without a live stream, and the outbox."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from anyio.abc import ByteStream

from astrlite.options import Options
from astrlite.runtime import StartupError, start
from tests.fakes.http_server import FakeServer, Received, response, serve, serve_raw
from tests.fakes.http_server import wait_until_closed as wait_forever
from tests.fakes.onebot import OneBot, onebot
from tests.fakes.telegram import BotApi, bot_api
from tests.fakes.webhook import Receiver, receiver
from tests.support.server import TEST_KEY, Running, running_server
from tests.support.waiting import wait_for

HEADERS = {"X-API-Key": TEST_KEY}
STATIC_KEY_ID = "static:1"  # the key id of running_server's TEST_KEY
TG_TOKEN = "123456:AAH-secret-token_value"
QQ_TOKEN = "qq-access-token-secret"
HOOK_SECRET = "webhook-signing-secret"
SECRETS = (TG_TOKEN, QQ_TOKEN, HOOK_SECRET)
CHAT_ID, GROUP_CHAT_ID = 4242, -1001234
QQ_USER, QQ_GROUP = 10001, 20002
HANG_TIMEOUT = 0.3
EMPTY = "Message content is empty (reply only is not allowed)"

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
# An Ogg page whose first packet is OpusHead (byte 26: one segment, then its length).
OGG = b"OggS" + bytes(22) + b"\x01\x13" + b"OpusHead" + bytes(64)
MP3 = b"ID3" + bytes(100)
MP4 = b"\x00\x00\x00\x18ftypisom" + bytes(100)
TEXT_FILE = "a report, \u00e9t\u00e9 2026\n".encode()


# -- fakes that misbehave -------------------------------------------------------------


@asynccontextmanager
async def hanging() -> Any:
    """Takes the request and never answers."""

    async def on_connection(stream: ByteStream, server: FakeServer) -> None:
        await wait_forever(stream)

    async with serve_raw(on_connection) as server:
        yield server


@asynccontextmanager
async def html_gateway() -> Any:
    """A reverse proxy whose upstream is down: an HTML error page."""

    async def handler(request: Received, stream: ByteStream) -> bool:
        page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        await stream.send(response(502, (("content-type", "text/html"),), page))
        return False

    async with serve(handler) as server:
        yield server


@asynccontextmanager
async def closing() -> Any:
    """Reads the request, then closes the connection without a word."""

    async def on_connection(stream: ByteStream, server: FakeServer) -> None:
        await stream.receive()

    async with serve_raw(on_connection) as server:
        yield server


# -- fixtures ---------------------------------------------------------------------------


@dataclass
class Env:
    srv: Running
    telegram: BotApi
    onebot: OneBot
    hook: Receiver

    @property
    def data_dir(self) -> Path:
        return self.srv.data_dir


@asynccontextmanager
async def fakes() -> Any:
    async with AsyncExitStack() as stack:
        yield (
            await stack.enter_async_context(bot_api(TG_TOKEN, {CHAT_ID, GROUP_CHAT_ID})),
            await stack.enter_async_context(onebot(QQ_TOKEN, {QQ_USER, QQ_GROUP})),
            await stack.enter_async_context(receiver(HOOK_SECRET)),
            await stack.enter_async_context(hanging()),
            await stack.enter_async_context(html_gateway()),
            await stack.enter_async_context(closing()),
        )


def rules_config(folder: Path) -> dict[str, Any]:
    rules = {"rules": [{"regex": "^slow", "reply": "held", "delay_ms": 600}]}
    rules_file = folder / "rules.json"
    rules_file.write_text(json.dumps(rules))
    providers = [{"id": "rules", "type": "scripted", "rules_file": str(rules_file)}]
    return {"provider": "rules", "providers": providers}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("im")
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(fakes()) as (telegram, qq, hook, hang, html, closer),
    ):
        platforms = [
            {"id": "tg", "type": "telegram", "token": TG_TOKEN, "base_url": telegram.url},
            {"id": "qq", "type": "onebot", "base_url": qq.url, "access_token": QQ_TOKEN},
            {"id": "hook", "type": "webhook", "url": hook.url, "secret": HOOK_SECRET, "retries": 1},
            {"id": "box", "type": "outbox"},
            {"id": "off", "type": "telegram", "enable": False, "token": "1:x"},
            {"id": "tg-wrong", "type": "telegram", "token": "999:wrong", "base_url": telegram.url},
            {"id": "qq-anon", "type": "onebot", "base_url": qq.url},
            {"id": "hang", "type": "onebot", "base_url": hang.url, "timeout": HANG_TIMEOUT},
            {"id": "html", "type": "telegram", "token": TG_TOKEN, "base_url": html.url},
            {"id": "closer", "type": "webhook", "url": closer.url, "secret": "s", "retries": 0},
            {
                "id": "refused",
                "type": "webhook",
                "url": "http://127.0.0.1:1/",
                "secret": "s",
                "retries": 1,
            },
        ]
        config = {**rules_config(folder), "platforms": platforms}
        with running_server(config=config) as srv:
            yield Env(srv, telegram, qq, hook)


def post(env: Env, body: Any, key: str = TEST_KEY) -> dict[str, Any]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = httpx.post(
        env.srv.url + "/api/v1/im/message",
        content=content,
        headers={"X-API-Key": key},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    result: dict[str, Any] = answer.json()
    return result


def ok(env: Env, umo: str, message: Any, key: str = TEST_KEY) -> None:
    assert post(env, {"umo": umo, "message": message}, key) == {
        "status": "ok",
        "message": None,
        "data": {},
    }


def error(env: Env, body: Any, key: str = TEST_KEY) -> str:
    reply = post(env, body, key)
    assert reply["status"] == "error" and reply["data"] is None, reply
    return str(reply["message"])


def upload(env: Env, name: str, data: bytes, key: str = TEST_KEY) -> str:
    answer = httpx.post(
        env.srv.url + "/api/v1/file", files={"file": (name, data)}, headers={"X-API-Key": key}
    )
    attachment_id: str = answer.json()["data"]["attachment_id"]
    return attachment_id


def media(kind: str, attachment_id: str) -> dict[str, str]:
    return {"type": kind, "attachment_id": attachment_id}


def outbox(env: Env, query: str = "") -> dict[str, Any]:
    answer = httpx.get(env.srv.url + "/api/v1/im/outbox" + query, headers=HEADERS)
    result: dict[str, Any] = answer.json()
    return result


def last_outbox_message(env: Env) -> dict[str, Any]:
    message: dict[str, Any] = outbox(env, "?platform_id=box")["data"]["messages"][-1]
    return message


def history(env: Env, session_id: str) -> list[dict[str, Any]]:
    rows = env.srv.db.reader.execute(
        "SELECT sender_id, content FROM history WHERE session_id = ? ORDER BY id", (session_id,)
    ).fetchall()
    return [{"sender_id": row[0], **json.loads(row[1])} for row in rows]


# -- the checks of M3, in order ---------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'"umo"', b"null", b"[" * 5000])
def test_a_body_that_is_no_json_object(env: Env, body: bytes) -> None:
    assert error(env, body) == "Request body must be a JSON object"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"umo": "nope", "message": None}, "Missing key: message"),  # before the umo
        ({}, "Missing key: umo"),
        ({"message": "hi"}, "Missing key: umo"),
        ({"umo": "", "message": "hi"}, "Missing key: umo"),
        ({"umo": 0, "message": "hi"}, "Missing key: umo"),
        ({"umo": False, "message": "hi"}, "Missing key: umo"),
        ({"umo": [], "message": "hi"}, "Missing key: umo"),
        ({"umo": None, "message": "hi"}, "Missing key: umo"),
        ({"umo": "tg", "message": "hi"}, "not enough values to unpack (expected 3, got 1)"),
        ({"umo": 12, "message": "hi"}, "not enough values to unpack (expected 3, got 1)"),
        (
            {"umo": "tg:FriendMessage", "message": 5},
            "not enough values to unpack (expected 3, got 2)",
        ),
        ({"umo": "tg:Friend:1", "message": 5}, "'Friend' is not a valid MessageType"),
        ({"umo": "tg:friendmessage:1"}, "'friendmessage' is not a valid MessageType"),
        ({"umo": "tg::1"}, "'' is not a valid MessageType"),
        (
            {"umo": "nope:FriendMessage:1", "message": 5},
            "Bot not found or not running for platform: nope",
        ),
        (
            {"umo": "off:GroupMessage:1", "message": "hi"},
            "Bot not found or not running for platform: off",
        ),
        (
            {"umo": ":FriendMessage:1", "message": "hi"},
            "Bot not found or not running for platform: ",
        ),
        # An absent message is {}: neither string nor list.
        ({"umo": "box:FriendMessage:1"}, "message must be a string or list"),
    ],
)
def test_checks_in_the_original_order(env: Env, body: dict[str, Any], expected: str) -> None:
    message = error(env, body)
    if expected.startswith(("not enough", "'")):
        expected = "Invalid umo: " + expected
    assert message == expected


# -- strict parts (M11) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (5, "message must be a string or list"),
        ({"type": "plain", "text": "hi"}, "message must be a string or list"),
        (True, "message must be a string or list"),
        ([1], "message part must be an object"),
        ([{"type": "plain", "text": "ok"}, "text"], "message part must be an object"),
        ([{"type": "reply"}], "reply part missing message_id"),
        ([{"type": "reply", "message_id": None}], "reply part missing message_id"),
        ([{"type": "at", "qq": "1"}], "unsupported message part type: at"),
        ([{"text": "no type"}], "unsupported message part type: "),
        ([{"type": None}], "unsupported message part type: None"),
        ([{"type": "image"}], "image part missing attachment_id"),
        ([{"type": "record", "attachment_id": ""}], "record part missing attachment_id"),
        ([{"type": "file", "attachment_id": 0}], "file part missing attachment_id"),
        ([{"type": "video", "attachment_id": None}], "video part missing attachment_id"),
        ([media("image", "zzz")], "attachment not found: zzz"),
        ([{"type": "file", "attachment_id": 123}], "attachment not found: 123"),
        ([{"type": "reply", "message_id": "7"}], EMPTY),
        ([{"type": "plain", "text": ""}], EMPTY),
        ([], EMPTY),
        ("", EMPTY),
        ("  \n ", EMPTY),
        # Part by part, in order: the first bad part decides.
        ([{"type": "at"}, {"type": "image"}], "unsupported message part type: at"),
        ([{"type": "image"}, {"type": "at"}], "image part missing attachment_id"),
    ],
)
def test_strict_parts(env: Env, message: Any, expected: str) -> None:
    assert error(env, {"umo": "box:FriendMessage:u1", "message": message}) == expected


def test_the_parts_are_checked_after_the_platform(env: Env) -> None:
    body = {"umo": "ghost:FriendMessage:u1", "message": [{"type": "at"}]}
    assert error(env, body) == "Bot not found or not running for platform: ghost"


def test_at_most_100_parts(env: Env) -> None:
    many = [{"type": "plain", "text": "x"}] * 10_000
    body = {"umo": "box:FriendMessage:u1", "message": many}
    assert error(env, body) == "message has too many parts (limit 100)"
    ok(env, "box:FriendMessage:u1", [{"type": "plain", "text": str(i)} for i in range(100)])
    assert len(last_outbox_message(env)["message"]) == 100


def test_attachments_of_another_key_are_unknown(env: Env) -> None:
    other = env.srv.create_key(scopes=["file", "im"])["api_key"]
    theirs = upload(env, "theirs.png", PNG, key=other)
    body = {"umo": "box:FriendMessage:u1", "message": [media("image", theirs)]}
    assert error(env, body) == f"attachment not found: {theirs}"
    ok(env, "box:FriendMessage:u1", [media("image", theirs)], key=other)


def test_a_removed_file_is_named_by_its_id_not_its_path(env: Env) -> None:
    attachment_id = upload(env, "gone.png", PNG)
    row = env.srv.services.attachments.get(attachment_id, STATIC_KEY_ID)
    assert row is not None
    (env.data_dir / row.path).unlink()
    message = error(
        env, {"umo": "box:FriendMessage:u1", "message": [media("image", attachment_id)]}
    )
    assert message == f"file not found: {attachment_id}"


def test_a_key_without_the_im_scope(env: Env) -> None:
    key = env.srv.create_key(scopes=["chat"])["api_key"]
    answer = httpx.post(
        env.srv.url + "/api/v1/im/message",
        json={"umo": "box:FriendMessage:1", "message": "x"},
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 403


# -- the outbox ---------------------------------------------------------------------------


def test_the_outbox_records_every_message(env: Env) -> None:
    picture = upload(env, "p.png", PNG)
    message = [
        {"type": "reply", "message_id": 17, "selected_text": "earlier"},
        {"type": "plain", "text": "disk "},
        {"type": "plain", "text": ""},  # skipped
        {"type": "plain", "text": "full"},
        {"type": "file", "attachment_id": picture},  # the stored kind wins (M11)
    ]
    ok(env, "box:GroupMessage:ops:room:1", message)  # colons stay in the session
    recorded = last_outbox_message(env)
    assert recorded.pop("sent_at").endswith("+00:00")
    assert recorded == {
        "platform_id": "box",
        "umo": "box:GroupMessage:ops:room:1",
        "message": [
            {"type": "reply", "message_id": "17", "selected_text": "earlier"},
            {"type": "plain", "text": "disk "},
            {"type": "plain", "text": "full"},
            {
                "type": "image",
                "attachment_id": picture,
                "filename": "p.png",
                "mime_type": "image/png",
                "size": len(PNG),
            },
        ],
    }
    ok(env, "box:OtherMessage:x", "  trimmed  ")
    assert last_outbox_message(env)["message"] == [{"type": "plain", "text": "trimmed"}]
    assert outbox(env)["data"]["messages"][-1]["umo"] == "box:OtherMessage:x"
    assert outbox(env, "?platform_id=tg") == {
        "status": "error",
        "message": "outbox platform not found: tg",
        "data": None,
    }


# -- telegram -----------------------------------------------------------------------------


def test_telegram_sends_each_part_in_order(env: Env) -> None:
    picture, voice, song = (
        upload(env, "sun.png", PNG),
        upload(env, "v.ogg", OGG),
        upload(env, "s.mp3", MP3),
    )
    clip, report = upload(env, "clip.mp4", MP4), upload(env, 'r\u00e9port "q".txt', TEXT_FILE)
    ok(env, f"tg:GroupMessage:{GROUP_CHAT_ID}", "Building")
    before = quoted = len(env.telegram.calls)  # the fake's message ids count its calls
    message = [
        {"type": "plain", "text": "Build "},
        {"type": "plain", "text": "failed"},
        {"type": "reply", "message_id": str(quoted)},
        media("image", picture),
        media("record", voice),
        media("record", song),
        media("video", clip),
        media("file", report),
        {"type": "plain", "text": "done"},
    ]
    ok(env, f"tg:GroupMessage:{GROUP_CHAT_ID}", message)
    calls = env.telegram.calls[before:]
    assert [c.method for c in calls] == [
        "sendMessage",
        "sendPhoto",
        "sendVoice",
        "sendAudio",
        "sendVideo",
        "sendDocument",
        "sendMessage",
    ]
    assert calls[0].fields == {
        "chat_id": GROUP_CHAT_ID,
        "reply_parameters": {"message_id": quoted},
        "text": "Build failed",
    }
    assert all("reply_parameters" not in c.fields for c in calls[1:])  # quoted once
    assert calls[1].fields == {"chat_id": str(GROUP_CHAT_ID)}
    uploads = [c.upload for c in calls[1:6]]
    assert [(u.filename, u.content_type, u.data) for u in uploads if u] == [
        ("sun.png", "image/png", PNG),
        ("v.ogg", "audio/ogg", OGG),
        ("s.mp3", "audio/mpeg", MP3),
        ("clip.mp4", "video/mp4", MP4),
        ("r\u00e9port %22q%22.txt", "text/plain", TEXT_FILE),
    ]
    assert calls[6].fields == {"chat_id": GROUP_CHAT_ID, "text": "done"}


def test_telegram_splits_long_text(env: Env) -> None:
    before = len(env.telegram.calls)
    ok(env, f"tg:FriendMessage:{CHAT_ID}", "x" * 5000)
    texts = [c.fields["text"] for c in env.telegram.calls[before:]]
    assert [len(t) for t in texts] == [4096, 904]


@pytest.mark.parametrize(
    ("umo", "message", "expected"),
    [
        ("tg:FriendMessage:777", "hi", "Bad Request: chat not found"),
        ("tg:FriendMessage:@nobody", "hi", "Bad Request: chat not found"),
        (
            f"tg:FriendMessage:{CHAT_ID}",
            [{"type": "reply", "message_id": "x"}, {"type": "plain", "text": "hi"}],
            "Bad Request: can't parse reply parameters JSON object",
        ),
        ("tg-wrong:FriendMessage:1", "hi", "Unauthorized"),
    ],
)
def test_telegram_failures_in_its_own_words(
    env: Env, umo: str, message: Any, expected: str
) -> None:
    assert error(env, {"umo": umo, "message": message}) == f"Failed to send message: {expected}"


# -- onebot -------------------------------------------------------------------------------


def test_onebot_private_and_group_messages(env: Env) -> None:
    picture, voice, clip = (
        upload(env, "p.png", PNG),
        upload(env, "a.mp3", MP3),
        upload(env, "v.mp4", MP4),
    )
    before = len(env.onebot.sent)
    message = [
        {"type": "reply", "message_id": 99},
        {"type": "plain", "text": "look"},
        media("image", picture),
        media("record", voice),
        media("video", clip),
    ]
    ok(env, f"qq:FriendMessage:{QQ_USER}", message)
    ok(env, f"qq:GroupMessage:{QQ_GROUP}", "hello group")
    private, group = env.onebot.sent[before:]
    assert (private.action, private.target) == ("/send_private_msg", QQ_USER)
    assert [s["type"] for s in private.segments] == ["reply", "text", "image", "record", "video"]
    assert private.segments[:2] == [
        {"type": "reply", "data": {"id": "99"}},
        {"type": "text", "data": {"text": "look"}},
    ]
    assert private.files == [PNG, MP3, MP4]
    assert (group.action, group.target) == ("/send_group_msg", QQ_GROUP)
    assert group.segments == [{"type": "text", "data": {"text": "hello group"}}]


@pytest.mark.parametrize(
    ("umo", "message", "expected"),
    [
        ("qq:FriendMessage:999", "hi", "no such user_id: 999 (retcode 1200)"),
        ("qq:GroupMessage:abc", "hi", "group_id must be a number (retcode 1400)"),
        ("qq:OtherMessage:1", "hi", "onebot cannot send OtherMessage messages"),
        (f"qq-anon:FriendMessage:{QQ_USER}", "hi", "HTTP 401: access token missing"),
    ],
)
def test_onebot_failures(env: Env, umo: str, message: Any, expected: str) -> None:
    assert error(env, {"umo": umo, "message": message}) == f"Failed to send message: {expected}"


def test_onebot_cannot_send_files(env: Env) -> None:
    report = upload(env, "r.txt", TEXT_FILE)
    before = len(env.onebot.server.requests)
    body = {"umo": f"qq:FriendMessage:{QQ_USER}", "message": [media("file", report)]}
    assert error(env, body) == "Failed to send message: onebot cannot send file parts"
    assert len(env.onebot.server.requests) == before  # refused before any call


# -- webhook ------------------------------------------------------------------------------


def test_webhook_delivers_a_signed_payload(env: Env) -> None:
    picture = upload(env, "p.png", PNG)
    ok(
        env,
        "hook:FriendMessage:ops",
        [{"type": "plain", "text": "deploy done"}, media("image", picture)],
    )
    delivered = env.hook.delivered[-1]
    assert delivered["sent_at"].endswith("+00:00")
    assert delivered["umo"] == "hook:FriendMessage:ops"
    text, image = delivered["message"]
    assert text == {"type": "plain", "text": "deploy done"}
    data = image.pop("data")
    assert image == {
        "type": "image",
        "attachment_id": picture,
        "filename": "p.png",
        "mime_type": "image/png",
        "size": len(PNG),
    }
    assert base64.b64decode(data) == PNG


def test_webhook_retries_5xx_but_never_4xx(env: Env) -> None:
    requests = env.hook.server.requests
    env.hook.statuses[:] = [503]
    before = len(requests)
    ok(env, "hook:FriendMessage:ops", "second try")
    assert (
        len(requests) == before + 2 and env.hook.delivered[-1]["message"][0]["text"] == "second try"
    )
    env.hook.statuses[:] = [503, 503]
    before = len(requests)
    assert error(env, {"umo": "hook:FriendMessage:ops", "message": "x"}) == (
        "Failed to send message: webhook answered HTTP 503: try again later (after 2 attempts)"
    )
    assert len(requests) == before + 2
    env.hook.statuses[:] = [409]
    before = len(requests)
    assert error(env, {"umo": "hook:FriendMessage:ops", "message": "x"}) == (
        "Failed to send message: webhook answered HTTP 409: try again later"
    )
    assert len(requests) == before + 1


# -- platforms that misbehave -------------------------------------------------------------


def test_a_platform_that_hangs_times_out(env: Env) -> None:
    started = time.monotonic()
    message = error(env, {"umo": "hang:FriendMessage:1", "message": "hi"})
    assert message.startswith("Failed to send message: timed out waiting for a response from ")
    assert message.endswith(f"(no data for {HANG_TIMEOUT:g} s)")
    assert time.monotonic() - started < HANG_TIMEOUT + 2


def test_a_platform_that_answers_html(env: Env) -> None:
    assert error(env, {"umo": "html:FriendMessage:1", "message": "hi"}) == (
        "Failed to send message: HTTP 502 (text/html), not a Bot API answer"
    )


def test_a_platform_that_closes_the_connection(env: Env) -> None:
    message = error(env, {"umo": "closer:FriendMessage:1", "message": "hi"})
    assert message.startswith("Failed to send message: connection closed by 127.0.0.1:")
    assert message.endswith(" before a response")


def test_a_platform_that_refuses_connections_is_retried(env: Env) -> None:
    assert error(env, {"umo": "refused:FriendMessage:1", "message": "hi"}) == (
        "Failed to send message: connection refused by 127.0.0.1:1 (after 2 attempts)"
    )


def test_secrets_never_leave(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bots = httpx.get(env.srv.url + "/api/v1/im/bots", headers=HEADERS).text
    assert "tg-wrong" in bots and not any(secret in bots for secret in SECRETS)
    answers = [
        error(env, {"umo": umo, "message": "hi"})
        for umo in ("tg:FriendMessage:1", "qq:FriendMessage:1", "html:FriendMessage:1")
    ]
    env.hook.statuses[:] = [401, 401]
    answers.append(error(env, {"umo": "hook:FriendMessage:1", "message": "hi"}))
    assert answers[-1].endswith("HTTP 401: try again later")
    text = "\n".join(answers) + caplog.text
    assert "sending to tg failed: Bad Request: chat not found" in caplog.text
    assert not any(secret in text for secret in SECRETS)


# -- webchat ------------------------------------------------------------------------------


def test_webchat_without_a_live_stream_saves_a_bot_row(env: Env) -> None:
    picture = upload(env, "p.png", PNG)
    clip = upload(env, "v.mp4", MP4)
    message = [{"type": "plain", "text": "pic:"}, media("image", picture), media("video", clip)]
    ok(env, "webchat:FriendMessage:wc-quiet", message)
    ok(env, "webchat:GroupMessage:webchat!alice!wc-quiet", "second")  # the event form
    ok(env, "webchat:FriendMessage:wc-quiet", [media("video", clip)])  # nothing to store
    first, second = history(env, "wc-quiet")
    assert first["sender_id"] == "bot" and first["type"] == "bot"
    plain, image = first["message"]
    assert plain == {"type": "plain", "text": "pic:"}
    assert image["type"] == "image" and image["filename"] == "p.png"
    assert image["attachment_id"] != picture  # a copy, owned by the sender
    copy = env.srv.services.attachments.get(image["attachment_id"], STATIC_KEY_ID)
    assert copy is not None and (env.data_dir / copy.path).read_bytes() == PNG
    assert second["message"] == [{"type": "plain", "text": "second"}]
    ok(env, "webchat:FriendMessage:with:colons", "x")
    assert history(env, "with:colons")[0]["message"] == [{"type": "plain", "text": "x"}]


def test_webchat_replies_quote_only_the_same_session(env: Env) -> None:
    ok(env, "webchat:FriendMessage:wc-a", "first")
    ok(env, "webchat:FriendMessage:wc-b", "other")
    row_a = env.srv.db.reader.execute(
        "SELECT id FROM history WHERE session_id = 'wc-a'"
    ).fetchone()[0]
    body = {
        "umo": "webchat:FriendMessage:wc-b",
        "message": [{"type": "reply", "message_id": row_a}, {"type": "plain", "text": "re"}],
    }
    assert error(env, body) == f"reply message not found: {row_a}"
    body["message"] = [{"type": "reply", "message_id": "nope"}, {"type": "plain", "text": "re"}]
    assert error(env, body) == "reply message not found: nope"
    reply = [{"type": "reply", "message_id": str(row_a)}, {"type": "plain", "text": "re"}]
    ok(env, "webchat:FriendMessage:wc-a", reply)  # accepted, and not stored
    assert history(env, "wc-a")[-1]["message"] == [{"type": "plain", "text": "re"}]


def test_webchat_with_a_live_stream(env: Env) -> None:
    picture = upload(env, "p.png", PNG)
    turn = {"username": "live", "session_id": "wc-live", "message": "slow"}
    url = env.srv.url + "/api/v1/chat"
    with httpx.stream("POST", url, json=turn, headers=HEADERS, timeout=10) as stream:
        wait_for(lambda: len(history(env, "wc-live")) == 1)
        # The user row is committed a moment before the turn becomes injectable.
        time.sleep(0.05)
        pushed = [{"type": "plain", "text": "pic:"}, media("image", picture)]
        ok(env, "webchat:FriendMessage:webchat!live!wc-live", pushed)
        raw = stream.read().decode()
    events = [json.loads(line[6:]) for line in raw.split("\n\n") if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[:5] == ["session_id", "plain", "image", "complete", "message_saved"]
    plain, image, complete = events[1:4]
    assert plain["data"] == "pic:" and plain["streaming"] is True
    assert image["data"].startswith("[IMAGE]") and image["data"].endswith(".png")
    assert complete == {
        "type": "complete",
        "data": image["data"],
        "streaming": True,
        "chain_type": None,
        "message_id": plain["message_id"],
    }
    rows = history(env, "wc-live")
    assert [row["type"] for row in rows] == ["user", "bot", "bot"]
    saved = rows[1]["message"]
    assert [p["type"] for p in saved] == ["image", "plain"]  # as the live turn saves it
    assert saved[0]["filename"] == image["data"][len("[IMAGE]") :]
    assert rows[2]["message"] == [{"type": "plain", "text": "held"}]


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"id": "t", "type": "telegram"}, "platforms[0]: token: expected a non-empty string"),
        ({"id": "t", "type": "telegram", "token": "a b"}, "token: must be printable ASCII"),
        ({"id": "t", "type": "telegram", "token": "1:x", "tokne": 1}, "tokne: unknown key"),
        ({"id": "o", "type": "onebot", "base_url": "ftp://x"}, "base_url: invalid URL"),
        ({"id": "o", "type": "onebot", "base_url": "http://x", "timeout": 0}, "timeout: expected"),
        ({"id": "w", "type": "webhook", "url": "http://x"}, "secret: expected a non-empty"),
        (
            {"id": "w", "type": "webhook", "url": "http://x", "secret": "s", "retries": -1},
            "retries: expected a whole number",
        ),
        ({"id": "b", "type": "outbox", "timeout": 1}, "timeout: unknown key"),
        ({"id": "webchat", "type": "outbox"}, "'webchat' is the built-in web chat"),
    ],
)
def test_a_bad_platform_entry_stops_the_start(
    tmp_path: Path, entry: dict[str, Any], problem: str
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"platforms": [entry]}))
    with pytest.raises(StartupError, match=r"^config\.json: platforms\[0\]") as raised:
        start(Options(port=0, data_dir=str(tmp_path)), {})
    assert problem in str(raised.value)


def test_a_disabled_entry_is_not_running_and_not_checked() -> None:
    config = {"platforms": [{"id": "t", "type": "telegram", "enable": False}]}
    with running_server(config=config, http_errors=True) as srv:
        answer = httpx.post(
            srv.url + "/api/v1/im/message",
            json={"umo": "t:FriendMessage:1", "message": "x"},
            headers=HEADERS,
        )
        assert answer.status_code == 404
        assert answer.json()["message"] == "Bot not found or not running for platform: t"
        # No outbox configured: the path does not exist.
        missing = httpx.get(srv.url + "/api/v1/im/outbox", headers=HEADERS)
        assert (missing.status_code, missing.json()["message"]) == (404, "Not found")


def test_honest_statuses_with_http_errors() -> None:
    config = {"platforms": [{"id": "qq", "type": "onebot", "base_url": "http://127.0.0.1:1"}]}
    with running_server(config=config, http_errors=True) as srv:

        def status(body: dict[str, Any]) -> int:
            answer = httpx.post(srv.url + "/api/v1/im/message", json=body, headers=HEADERS)
            return answer.status_code

        assert status({"umo": "qq"}) == 400
        assert status({"umo": "qq:FriendMessage:1", "message": [{"type": "at"}]}) == 400
        assert status({"umo": "qq:FriendMessage:1", "message": [media("image", "x")]}) == 404
        assert status({"umo": "qq:FriendMessage:1", "message": "hi"}) == 502


def test_pooled_connections_close_when_the_server_stops() -> None:
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(onebot("", {QQ_USER})) as qq,
    ):
        config = {"platforms": [{"id": "qq", "type": "onebot", "base_url": qq.url}]}
        with running_server(config=config) as srv:
            answer = httpx.post(
                srv.url + "/api/v1/im/message",
                json={"umo": f"qq:FriendMessage:{QQ_USER}", "message": "bye"},
                headers=HEADERS,
            )
            assert answer.json()["status"] == "ok"
            assert (qq.server.accepted, qq.server.closed) == (1, 0)  # kept for the next send
        wait_for(lambda: qq.server.closed == 1)
