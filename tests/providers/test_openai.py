"""The openai provider: its pure parts, then against a fake upstream on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import re
import ssl
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme

from astrlite.outbound.registry import ClientRegistry
from astrlite.providers.base import (
    Attachment,
    ChatMessage,
    Provider,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    Usage,
)
from astrlite.providers.openai import (
    ChatStream,
    OpenAIConfig,
    OpenAIProvider,
    build_payload,
    chunk_json,
    reply_events,
    status_error_text,
)
from astrlite.sse import SseDecoder, SseError
from tests.fakes.openai_upstream import (
    DONE,
    OpenAIUpstream,
    Reply,
    completion,
    delta,
    error_body,
    openai_upstream,
    sse,
    usage,
    usage_chunk,
)

DEADLINE = 5  # seconds for any one test; each takes milliseconds
TINY = 0.2  # an injected timeout that is meant to fire

pytestmark = pytest.mark.anyio


def ask(text: str = "hi", *, stream: bool = True, model: str | None = None) -> ProviderRequest:
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", text))
    return ProviderRequest(messages=messages, model=model, stream=stream)


def entry(upstream: OpenAIUpstream, **overrides: Any) -> dict[str, Any]:
    base = {"id": "up", "type": "openai", "base_url": upstream.base_url, "model": "m1"}
    return {**base, "api_key": "sk-test", "timeout": 5, **overrides}


async def collect(
    provider: Provider, request: ProviderRequest
) -> tuple[list[ProviderEvent], ProviderError | None]:
    events: list[ProviderEvent] = []
    try:
        async for event in provider.reply(request):
            events.append(event)
    except ProviderError as error:
        return events, error
    return events, None


async def run(
    upstream: OpenAIUpstream, request: ProviderRequest, **overrides: Any
) -> tuple[list[ProviderEvent], ProviderError | None]:
    provider = OpenAIProvider.from_entry(entry(upstream, **overrides))
    try:
        return await collect(provider, request)
    finally:
        await provider.aclose()


# -- server-sent events -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "events"),
    [
        (b"data: a\n\n", ["a"]),
        (b"data: a\r\n\r\ndata: b\r\r", ["a", "b"]),
        (b": keep-alive\n\ndata: a\n\n", ["a"]),
        (b"event: x\nid: 1\nretry: 5\ndata: a\nother: z\n\n", ["a"]),
        (b"data: a\ndata: b\n\n", ["a\nb"]),
        (b"data:a\n\ndata:  b\n\n", ["a", " b"]),
        (b"\xef\xbb\xbfdata: a\n\n", ["a"]),
        (b"data\n\n", [""]),
        (b"event: only\n\n\n\n", []),
        (b"data: cut off\n", []),
        ("data: 你好\n\n".encode(), ["你好"]),
        (b"data: a\n\ndata: b\r\n\r\ndata: c\n\ndata: d\rdata: e\n\n", ["a", "b", "c", "d\ne"]),
        (b"data: \xff\n\n", ["\ufffd"]),
    ],
)
def test_sse_decoder(stream: bytes, events: list[str]) -> None:
    assert SseDecoder().feed(stream) == events
    # The same stream one byte at a time (lines and CRLFs split across reads).
    decoder = SseDecoder()
    assert [e for i in range(len(stream)) for e in decoder.feed(stream[i : i + 1])] == events


@pytest.mark.parametrize(
    "stream",
    [
        b"data: a\n\ndata: b\n\n",
        b"data: a\ndata: b\n\ndata:c\n\n\n\ndata: d\n\n",
        b": keep-alive\n\ndata: a\n\nevent: x\ndata: b\nid: 2\n\n\ndata\n\n",
        b"data: a\r\n\r\ndata: b\n\ndata: c\rdata: d\n\n",
        "data: 你好\n\n".encode() + b"data: \xff\n\n",
        b"data: a\n\ndata: cut off\n",
    ],
)
def test_sse_decoder_whole_events_in_any_split(stream: bytes) -> None:
    # Past the first line (where a BOM may be), reads of whole events take a shorter
    # path: its events are those of the line-by-line reading, however the bytes are cut.
    line_by_line = SseDecoder()
    line_by_line.feed(b"data: first\n\n")
    expected = [e for i in range(len(stream)) for e in line_by_line.feed(stream[i : i + 1])]
    for at in range(len(stream) + 1):
        decoder = SseDecoder()
        assert decoder.feed(b"data: first\n\n") == ["first"]
        assert decoder.feed(stream[:at]) + decoder.feed(stream[at:]) == expected, at


@pytest.mark.parametrize(
    "text",
    [
        '{"choices": [{"delta": {"content": "a"}}]}',
        ' {"a": 1}',
        '{"a": 1}\n',
        '{"a": 1} {"b": 2}',
        '{"a": 1}x',
        "\ufeff{}",
        "",
        "   ",
        "[1, 2]",
        "-Infinity",
        '"\\ud800"',
        '{"a": 1, "a": 2}',
        '{"a": ',
    ],
)
def test_chunk_json_is_read_as_json_loads_reads_it(text: str) -> None:
    try:
        expected: object = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            chunk_json(text)
    else:
        assert chunk_json(text) == expected


def test_sse_decoder_caps_an_event() -> None:
    decoder = SseDecoder(max_event_bytes=100)
    assert decoder.feed(b"data: " + b"x" * 50 + b"\n") == []
    with pytest.raises(SseError, match="sent an event longer than 100 bytes"):
        decoder.feed(b"data: " + b"x" * 60)


def test_chat_stream_events() -> None:
    stream = ChatStream()
    body = b"".join(
        [
            delta(reasoning="thinking"),
            sse({"choices": [{"delta": {"reasoning": " more"}}]}),
            delta(content="Hel"),
            delta(content=""),
            delta(content="lo"),
            sse({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
            usage_chunk(prompt=10, completion=3, cached=4),
            DONE,
            delta(content="after done"),
        ]
    )
    events = stream.feed(body)
    assert events == [
        ReasoningDelta("thinking"),
        ReasoningDelta(" more"),
        TextDelta("Hel"),
        TextDelta("lo"),
        Usage(input_other=6, input_cached=4, output=3),
    ]
    assert stream.done


def test_chat_stream_usage_without_cache_details_and_repeated() -> None:
    stream = ChatStream()
    first = sse({"choices": [{"delta": {"content": "a"}}], "usage": usage(5, 1)})
    last = sse({"choices": [], "usage": usage(5, 2)})
    assert stream.feed(first + last + DONE) == [
        TextDelta("a"),
        Usage(input_other=5, input_cached=0, output=2),
    ]


@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        (b"data: {not json\n\n", "upstream sent a stream chunk that is not JSON: {not json"),
        (sse({"error": {"message": "overloaded"}}), "upstream error: overloaded"),
    ],
)
def test_chat_stream_errors(chunk: bytes, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        ChatStream().feed(delta(content="a") + chunk)
    assert str(caught.value) == message


# -- non-streamed replies and errors ------------------------------------------------------


def test_reply_events() -> None:
    body = completion("Hello", reasoning="hmm", used=usage(7, 2, cached=7))
    assert reply_events(body) == [
        ReasoningDelta("hmm"),
        TextDelta("Hello"),
        Usage(input_other=0, input_cached=7, output=2),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", "upstream sent a reply that is not JSON: <html>"),
        (b'{"choices": []}', "upstream reply has no choices[0].message"),
        (b'{"error": {"message": "bad model"}}', "upstream error: bad model"),
    ],
)
def test_reply_events_errors(body: bytes, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        reply_events(body)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("status", "body", "text"),
    [
        (401, error_body("Incorrect API key provided"), "HTTP 401: Incorrect API key provided"),
        (404, b'{"error": "model not found"}', "HTTP 404: model not found"),
        (502, b"<html>" + b"x" * 300, "HTTP 502: <html>" + "x" * 194),
        (503, b'{"detail": "busy"}', 'HTTP 503: {"detail": "busy"}'),
        (500, b"", "HTTP 500"),
    ],
)
def test_status_error_text(status: int, body: bytes, text: str) -> None:
    assert status_error_text(status, body) == f"upstream returned {text}"


# -- the request body ---------------------------------------------------------------------


def test_payload_streaming_and_model() -> None:
    payload = build_payload(ask(stream=True), "default-model", {})
    assert payload == {
        "model": "default-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    payload = build_payload(ask(stream=False, model="chosen"), "default-model", {})
    assert payload["model"] == "chosen"
    assert payload["stream"] is False
    assert "stream_options" not in payload


def test_payload_attachments() -> None:
    image = Attachment("image", "/data/a.png", "image/png", "a.png")
    big = Attachment("image", "/data/big.png", "image/png", "big.png")
    doc = Attachment("file", "/data/r.pdf", "application/pdf", "r.pdf")
    messages = (
        ChatMessage("user", "look", (image, big, doc)),
        ChatMessage("assistant", "", (image,)),
        ChatMessage("user", "", (image,)),
    )
    request = ProviderRequest(messages=messages, model=None, stream=False)
    payload = build_payload(request, "m", {"/data/a.png": "data:image/png;base64,AA=="})
    image_part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
    text = "look\n[image: big.png (image/png)]\n[file: r.pdf (application/pdf)]"
    assert payload["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": text}, image_part]},
        {"role": "assistant", "content": "[image: a.png (image/png)]"},
        {"role": "user", "content": [image_part]},
    ]


def test_config_from_entry(tmp_path: Path) -> None:
    config = OpenAIConfig.from_entry(
        {"id": "x", "type": "openai", "base_url": "https://api.example.com/v1", "model": "m"},
        tmp_path,
    )
    assert config == OpenAIConfig("x", "https://api.example.com/v1", "m")
    relative = {"id": "x", "base_url": "http://h/", "model": "m", "ca_file": "certs/ca.pem"}
    ca_file = OpenAIConfig.from_entry(relative, tmp_path).connection.ca_file
    assert ca_file == str(tmp_path / "certs/ca.pem")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"model": ""}, "model: expected a non-empty string"),
        ({"base_url": "ftp://h/"}, "base_url: invalid URL 'ftp://h': use http:// or https://"),
        ({"timeout": 0}, "timeout: expected a positive number of seconds"),
        ({"timeout": True}, "timeout: expected a positive number of seconds"),
        ({"api_key": "sk bad"}, "api_key: must be printable ASCII without spaces"),
        ({"proxy": "socks5://p:1"}, "proxy: unsupported proxy URL"),
        ({"ca_file": 3}, "ca_file: expected a string or null"),
        ({"verify": "no"}, "verify: expected true or false"),
        ({"type": "openai", "modle": "m"}, "modle: unknown key for a openai provider"),
    ],
)
def test_config_rejects(change: dict[str, Any], problem: str) -> None:
    raw = {"id": "x", "base_url": "http://127.0.0.1:1/v1", "model": "m", **change}
    with pytest.raises(ValueError) as caught:
        OpenAIConfig.from_entry(raw)
    assert str(caught.value).startswith(problem)


def test_unreadable_ca_file(tmp_path: Path) -> None:
    raw = {"id": "x", "base_url": "https://h/", "model": "m", "ca_file": "missing.pem"}
    with pytest.raises(ValueError, match=r"^cannot load ca_file .*missing\.pem"):
        OpenAIProvider.from_entry(raw, tmp_path)


# -- against the fake upstream ------------------------------------------------------------


async def test_streamed_reply() -> None:
    parts = [
        b": OPENROUTER PROCESSING\n\n",
        delta(reasoning="Let me think."),
        delta(content="Hel"),
        delta(content="lo!"),
        usage_chunk(prompt=12, completion=3, cached=2) + DONE,
    ]
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            upstream.replies.append(Reply(parts=parts))
            events, error = await run(upstream, ask("Hello?"))
    assert error is None
    assert events == [
        ReasoningDelta("Let me think."),
        TextDelta("Hel"),
        TextDelta("lo!"),
        Usage(input_other=10, input_cached=2, output=3),
    ]
    [request] = upstream.requests
    assert (request.method, request.target) == ("POST", "/v1/chat/completions")
    assert request.header("authorization") == "Bearer sk-test"
    assert request.header("content-type") == "application/json"
    assert upstream.sent_json() == {
        "model": "m1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello?"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_non_streamed_reply_without_api_key() -> None:
    body = completion("Fine.", reasoning="quick", used=usage(4, 1))
    reply = Reply(content_type="application/json", parts=[body[:10], body[10:]])
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            upstream.replies.append(reply)
            events, error = await run(upstream, ask(stream=False, model="big"), api_key="")
    assert error is None
    assert events == [ReasoningDelta("quick"), TextDelta("Fine."), Usage(4, 0, 1)]
    assert upstream.requests[0].header("authorization") is None
    assert upstream.sent_json()["model"] == "big"
    assert "stream_options" not in upstream.sent_json()


async def test_stream_asked_but_json_answered() -> None:
    reply = Reply(content_type="application/json", parts=[completion("Whole.")])
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            upstream.replies.append(reply)
            events, error = await run(upstream, ask(stream=True))
    assert (events, error) == ([TextDelta("Whole.")], None)


async def test_image_attachment_sent_as_data_url(tmp_path: Path) -> None:
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    (tmp_path / "cat.png").write_bytes(picture)
    image = Attachment("image", str(tmp_path / "cat.png"), "image/png", "cat.png")
    message = ChatMessage("user", "What is this?", (image,))
    request = ProviderRequest(messages=(message,), model=None, stream=True)
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            upstream.replies.append(Reply(parts=[delta(content="A cat."), DONE]))
            events, error = await run(upstream, request)
    assert (events, error) == ([TextDelta("A cat.")], None)
    [sent] = upstream.sent_json()["messages"]
    text, image_part = sent["content"]
    assert text == {"type": "text", "text": "What is this?"}
    prefix = "data:image/png;base64,"
    assert image_part["type"] == "image_url"
    assert image_part["image_url"]["url"].startswith(prefix)
    assert base64.b64decode(image_part["image_url"]["url"][len(prefix) :]) == picture


async def test_missing_attachment(tmp_path: Path) -> None:
    image = Attachment("image", str(tmp_path / "gone.png"), "image/png", "gone.png")
    request = ProviderRequest((ChatMessage("user", "x", (image,)),), None, True)
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            _, error = await run(upstream, request)
    assert str(error) == "cannot read attachment gone.png: No such file or directory"
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Invalid value for 'messages'"),
        (401, "Incorrect API key provided"),
        (429, "Rate limit reached for requests"),
        (500, "The server had an error while processing your request."),
    ],
)
async def test_upstream_error_status(status: int, message: str) -> None:
    reply = Reply(status=status, content_type="application/json", parts=[error_body(message)])
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            upstream.replies.append(reply)
            events, error = await run(upstream, ask())
    assert events == []
    assert str(error) == f"upstream returned HTTP {status}: {message}"


async def test_upstream_error_page() -> None:
    page = b"<html><body>" + b"Bad gateway. " * 40 + b"</body></html>"
    reply = Reply(status=502, content_type="text/html", parts=[page])
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            upstream.replies.append(reply)
            _, error = await run(upstream, ask())
    assert str(error) == "upstream returned HTTP 502: " + page.decode()[:200]


async def test_stall_before_the_first_token() -> None:
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            upstream.replies.append(Reply(parts=[b": connected\n\n"], end="stall"))
            events, error = await run(upstream, ask(), timeout=TINY)
            await upstream.client_gone.wait()
    port = upstream.server.port if upstream.server else 0
    assert events == []
    expected = f"timed out waiting for a response from 127.0.0.1:{port} (no data for 0.2 s)"
    assert str(error) == expected


async def test_connection_cut_mid_stream() -> None:
    reply = Reply(parts=[delta(content="Hal"), delta(content="f")], end="cut")
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            upstream.replies.append(reply)
            events, error = await run(upstream, ask())
    port = upstream.server.port if upstream.server else 0
    assert events == [TextDelta("Hal"), TextDelta("f")]
    expected = f"connection closed by 127.0.0.1:{port} before the response was complete"
    assert str(error) == expected


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (
            [delta(content="a"), b"data: oops\n\n"],
            "upstream sent a stream chunk that is not JSON: oops",
        ),
        ([delta(content="a")], "upstream stream ended without [DONE]"),
    ],
)
async def test_broken_streams(parts: list[bytes], message: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            upstream.replies.append(Reply(parts=parts))
            events, error = await run(upstream, ask())
    assert events == [TextDelta("a")]
    assert str(error) == message


async def test_upstream_not_running() -> None:
    async with openai_upstream() as upstream:
        config = entry(upstream)
    provider = OpenAIProvider.from_entry(config)
    with anyio.fail_after(DEADLINE):
        _, error = await collect(provider, ask())
    assert str(error).startswith("connection refused by 127.0.0.1:")


async def test_cancelling_the_reply_closes_the_upstream_connection() -> None:
    with anyio.fail_after(DEADLINE):
        async with openai_upstream() as upstream:
            upstream.replies.append(Reply(parts=[delta(content="first")], end="stall"))
            provider = OpenAIProvider.from_entry(entry(upstream))
            received: list[ProviderEvent] = []
            with anyio.CancelScope() as scope:
                async for event in provider.reply(ask()):
                    received.append(event)
                    scope.cancel()  # as on server shutdown
            await upstream.client_gone.wait()
            await provider.aclose()
    assert received == [TextDelta("first")]


async def test_shared_client_and_https_with_ca_file(tmp_path: Path) -> None:
    ca = trustme.CA()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    shared = ClientRegistry()
    with anyio.fail_after(DEADLINE):
        async with openai_upstream(tls) as upstream:
            upstream.replies.extend([Reply(parts=[delta(content="ok"), DONE])] * 2)
            # The shared client trusts only the system store: the entry's ca_file needs its own.
            provider = OpenAIProvider.from_entry(
                entry(upstream, ca_file="ca.pem"), tmp_path, shared
            )
            assert await collect(provider, ask()) == ([TextDelta("ok")], None)
            await provider.aclose()
            plain = OpenAIProvider.from_entry(entry(upstream), tmp_path, shared)
            _, error = await collect(plain, ask())
            assert "certificate verify failed" in str(error)
    await shared.aclose()
