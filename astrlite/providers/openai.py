"""The `openai` provider: any OpenAI-compatible `POST {base_url}/chat/completions`.

Config entry (README, Configuration; plus `verify` as configs.py allows): {"id", "type": "openai",
"base_url", "api_key", "model", "timeout", "ca_file", "proxy", "verify"}; build the
provider with OpenAIProvider.from_entry. Streamed replies are read as server-sent events,
the rest as one JSON document; either way the provider yields ReasoningDelta, TextDelta
and Usage events, and turns every failure into a ProviderError a user can act on.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from astrlite import __version__
from astrlite.outbound import HttpClientError
from astrlite.outbound.registry import ClientGetter, ClientRegistry
from astrlite.providers.base import (
    Attachment,
    ChatMessage,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    Usage,
)
from astrlite.providers.openai_config import OpenAIConfig
from astrlite.sse import SseDecoder, SseError

if TYPE_CHECKING:
    from astrlite.outbound.connection import Response

# A whole non-streamed reply: 128k tokens of output is about 1 MiB of JSON.
MAX_REPLY_BYTES = 16 * 1024 * 1024
# After [DONE], what may still be read so the connection can be reused: the chunked
# terminator, perhaps a trailing comment; a server still talking after that is closed.
DRAIN_BYTES = 64 * 1024
DRAIN_SECONDS = 0.1
# Error bodies are short JSON; only their message (or first characters) is shown.
MAX_ERROR_BODY_BYTES = 64 * 1024
ERROR_TEXT_CHARS = 200
# OpenAI's limit for one image; a larger one is described in text instead of sent.
MAX_IMAGE_BYTES = 20 * 1024 * 1024


class OpenAIProvider:
    """Reaches the upstream through the server's client registry: the shared client, or
    the entry's own when it sets ca_file, proxy or verify."""

    def __init__(
        self, config: OpenAIConfig, client: ClientGetter, owned: ClientRegistry | None = None
    ) -> None:
        self.id = config.id
        self._config = config
        self._url = config.base_url + "/chat/completions"
        self._client = client
        self._owned = owned

    @classmethod
    def from_entry(
        cls,
        entry: Mapping[str, Any],
        data_dir: str | Path = ".",
        clients: ClientRegistry | None = None,
    ) -> OpenAIProvider:
        """ValueError with the problem for a bad entry or an unreadable ca_file. Without
        a registry the provider keeps its own, closed by aclose()."""
        config = OpenAIConfig.from_entry(entry, data_dir)
        owned = None
        if clients is None:
            clients = owned = ClientRegistry()
        return cls(config, clients.client_for(config.connection), owned)

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.aclose()

    async def reply(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        payload = build_payload(request, self._config.model, await _image_urls(request.messages))
        body = json.dumps(payload, ensure_ascii=False).encode()
        timeout = self._config.connection.timeout
        try:
            async with self._client().request(
                "POST",
                self._url,
                headers=self._headers(request.stream),
                body=body,
                connect_timeout=timeout,
                read_timeout=timeout,
            ) as response:
                if not 200 <= response.status < 300:
                    raise ProviderError(await _status_error(response))
                content_type = response.header("content-type") or ""
                if request.stream and content_type.startswith("text/event-stream"):
                    stream = ChatStream()
                    async for chunk in response.aiter_bytes():
                        for event in stream.feed(chunk):
                            yield event
                        if stream.done:
                            # The end of the chunked body follows [DONE] at once; reading
                            # it lets the next turn reuse this connection (no new TLS).
                            await response.drain(DRAIN_BYTES, DRAIN_SECONDS)
                            return
                    raise ProviderError("upstream stream ended without [DONE]")
                # Some servers ignore "stream": true and answer with one JSON document.
                for event in reply_events(await response.read(MAX_REPLY_BYTES)):
                    yield event
        except HttpClientError as exc:
            raise ProviderError(str(exc)) from None

    def _headers(self, stream: bool) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", "application/json"),
            ("Accept", "text/event-stream" if stream else "application/json"),
            ("User-Agent", f"astrlite/{__version__}"),
        ]
        if self._config.api_key:
            headers.append(("Authorization", f"Bearer {self._config.api_key}"))
        return headers


async def _status_error(response: Response) -> str:
    try:
        body = await response.read(MAX_ERROR_BODY_BYTES)
    except HttpClientError:
        body = b""
    return status_error_text(response.status, body)


def status_error_text(status: int, body: bytes) -> str:
    """`upstream returned HTTP 401: <OpenAI's error message, or the body's start>`."""
    text = body.decode("utf-8", "replace").strip()
    try:
        error = _dig(json.loads(text), "error")
    except ValueError:
        error = None
    message = _text(_dig(error, "message")) or _text(error) or text[:ERROR_TEXT_CHARS]
    return (
        f"upstream returned HTTP {status}: {message}"
        if message
        else f"upstream returned HTTP {status}"
    )


# -- building the request ---------------------------------------------------------------


def build_payload(
    request: ProviderRequest, default_model: str, image_urls: Mapping[str, str]
) -> dict[str, Any]:
    """The /chat/completions body; image_urls maps an attachment path to its data: URL."""
    payload: dict[str, Any] = {
        "model": request.model or default_model,
        "messages": [_message_json(message, image_urls) for message in request.messages],
        "stream": request.stream,
    }
    if request.stream:
        payload["stream_options"] = {"include_usage": True}
    return payload


def _message_json(message: ChatMessage, image_urls: Mapping[str, str]) -> dict[str, Any]:
    # Only user messages may carry image parts; anything not sent as one is described.
    sent = [a for a in message.attachments if message.role == "user" and a.path in image_urls]
    notes = [_describe(a) for a in message.attachments if a not in sent]
    text = "\n".join(part for part in (message.text, *notes) if part)
    if not sent:
        return {"role": message.role, "content": text}
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for attachment in sent:
        parts.append({"type": "image_url", "image_url": {"url": image_urls[attachment.path]}})
    return {"role": message.role, "content": parts}


def _describe(attachment: Attachment) -> str:
    return f"[{attachment.kind}: {attachment.filename} ({attachment.mime_type})]"


async def _image_urls(messages: tuple[ChatMessage, ...]) -> dict[str, str]:
    urls: dict[str, str] = {}
    for message in messages:
        for attachment in message.attachments:
            wanted = message.role == "user" and attachment.kind == "image"
            if wanted and attachment.path not in urls:
                url = await anyio.to_thread.run_sync(_data_url, attachment)
                if url is not None:
                    urls[attachment.path] = url
    return urls


def _data_url(attachment: Attachment) -> str | None:
    """The image as a data: URL, or None when it is too large to send."""
    try:
        with open(attachment.path, "rb") as file:
            data = file.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise ProviderError(
            f"cannot read attachment {attachment.filename}: {exc.strerror}"
        ) from None
    if len(data) > MAX_IMAGE_BYTES:
        return None
    return f"data:{attachment.mime_type};base64,{base64.b64encode(data).decode('ascii')}"


# -- reading the reply --------------------------------------------------------------------


class ChatStream:
    """Turns the bytes of a streamed /chat/completions reply into provider events.

    Usage is emitted once, at `[DONE]`, from the last chunk that carried it (some servers
    repeat it in every chunk).
    """

    def __init__(self) -> None:
        self._decoder = SseDecoder()
        self._usage: Usage | None = None
        self.done = False

    def feed(self, chunk: bytes) -> list[ProviderEvent]:
        events: list[ProviderEvent] = []
        try:
            completed = self._decoder.feed(chunk)
        except SseError as error:
            raise ProviderError(f"upstream {error}") from None
        for data in completed:
            if self.done:
                break
            if data == "[DONE]":
                self.done = True
                events.extend([self._usage] if self._usage else [])
            elif data.strip():
                events.extend(self._chunk_events(data))
        return events

    def _chunk_events(self, data: str) -> list[ProviderEvent]:
        try:
            chunk = chunk_json(data)
        except ValueError:
            raise ProviderError(
                f"upstream sent a stream chunk that is not JSON: {data[:ERROR_TEXT_CHARS]}"
            ) from None
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk:
            _raise_embedded_error(chunk)
        if chunk.get("usage") is not None:
            self._usage = _usage(chunk["usage"]) or self._usage
        choices = chunk.get("choices")
        # Once per token: plain look-ups where _dig would walk the path generically.
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            return _message_events(choices[0].get("delta"))
        return []


_DECODER = json.JSONDecoder()


def chunk_json(text: str) -> object:
    """json.loads(text), without its per-call set-up (a third of a stream chunk's cost)
    when text is one JSON document and nothing else, as a chunk's data is; json.loads
    decides everything else (whitespace around it, a BOM, errors)."""
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        end = -1
    return value if end == len(text) else json.loads(text)


def reply_events(body: bytes) -> list[ProviderEvent]:
    """The events of a non-streamed reply: reasoning, text, usage."""
    try:
        reply = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace")[:ERROR_TEXT_CHARS]
        raise ProviderError(f"upstream sent a reply that is not JSON: {text}") from None
    _raise_embedded_error(reply)
    message = _dig(reply, "choices", 0, "message")
    if message is None:
        raise ProviderError("upstream reply has no choices[0].message")
    usage = _usage(_dig(reply, "usage"))
    return [*_message_events(message), *([usage] if usage else [])]


def _raise_embedded_error(document: object) -> None:
    # Some servers report failures inside a 200 reply or mid-stream.
    error = _dig(document, "error")
    if error is not None:
        detail = _text(_dig(error, "message")) or _text(error) or json.dumps(error)
        raise ProviderError(f"upstream error: {detail[:ERROR_TEXT_CHARS]}")


def _message_events(message: object) -> list[ProviderEvent]:
    """A message (non-streamed) or a delta (streamed): its reasoning, then its text."""
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if "reasoning_content" not in message and "reasoning" not in message:
        return [TextDelta(content)] if content and isinstance(content, str) else []
    events: list[ProviderEvent] = []
    reasoning = _text(message.get("reasoning_content")) or _text(message.get("reasoning"))
    if reasoning:
        events.append(ReasoningDelta(reasoning))
    if content and isinstance(content, str):
        events.append(TextDelta(content))
    return events


def _usage(usage: object) -> Usage | None:
    prompt = _dig(usage, "prompt_tokens")
    output = _dig(usage, "completion_tokens")
    if not isinstance(prompt, int) or not isinstance(output, int):
        return None
    cached = _dig(usage, "prompt_tokens_details", "cached_tokens")
    cached = cached if isinstance(cached, int) else 0
    return Usage(input_other=max(prompt - cached, 0), input_cached=cached, output=output)


def _dig(value: object, *path: str | int) -> object:
    """value[path[0]][path[1]]..., or None where the shape differs."""
    for key in path:
        if isinstance(key, str) and isinstance(value, dict):
            value = value.get(key)
        elif isinstance(key, int) and isinstance(value, list) and len(value) > key:
            value = value[key]
        else:
            return None
    return value


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
