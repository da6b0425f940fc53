from __future__ import annotations

import pytest

from astrlite.providers.base import (
    Attachment,
    ChatMessage,
    ProviderEvent,
    ProviderRequest,
    TextDelta,
    Usage,
)
from astrlite.providers.echo import EchoProvider, split_deltas


def request(*messages: ChatMessage, stream: bool = True) -> ProviderRequest:
    return ProviderRequest(messages=messages, model=None, stream=stream)


async def collect(req: ProviderRequest) -> list[ProviderEvent]:
    return [event async for event in EchoProvider().reply(req)]


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


@pytest.mark.anyio
async def test_echoes_word_by_word_then_usage() -> None:
    events = await collect(request(ChatMessage("user", "hello  big world")))
    assert events == [
        TextDelta("Echo:"),
        TextDelta(" hello"),
        TextDelta("  big"),
        TextDelta(" world"),
        Usage(input_other=3, input_cached=0, output=4),
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [True, False])
async def test_attachments_are_named_and_every_message_counts_as_input(stream: bool) -> None:
    photo = Attachment("image", "/d/a/1.png", "image/png", "cat.png")
    note = Attachment("record", "/d/a/2.wav", "audio/wav", "note.wav")
    events = await collect(
        request(
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "earlier question"),
            ChatMessage("assistant", "earlier answer"),
            ChatMessage("user", "look", (photo, note)),
            stream=stream,
        )
    )
    assert text_of(events) == "Echo: look [image: cat.png] [record: note.wav]"
    assert events[-1] == Usage(input_other=7, input_cached=0, output=6)


@pytest.mark.anyio
async def test_media_only_and_no_user_message() -> None:
    voice = Attachment("record", "/x.wav", "audio/wav", "v.wav")
    assert text_of(await collect(request(ChatMessage("user", "", (voice,))))) == (
        "Echo: [record: v.wav]"
    )
    assert text_of(await collect(request(ChatMessage("system", "sys")))) == "Echo:"


@pytest.mark.parametrize("text", ["", "a", " a", "a ", "  a\n b\t c  \n", "\n\n", "一 二"])
def test_deltas_concatenate_to_the_exact_text(text: str) -> None:
    deltas = split_deltas(text)
    assert "".join(deltas) == text
    assert all(delta for delta in deltas)


def test_provider_id() -> None:
    assert EchoProvider().id == "echo"
    assert EchoProvider("mine").id == "mine"
