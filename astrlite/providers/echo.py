"""The default provider ``echo``: a deterministic reply, no network, no delays.

The reply is ``Echo:`` followed by the user's message text and then one
``[<kind>: <filename>]`` per attachment of that message, joined by single spaces, with an
empty text left out. ``"hi"`` with ``cat.png`` attached gives ``Echo: hi [image: cat.png]``;
only a voice note gives ``Echo: [record: note.wav]``. The user's message is the last
message of the request (role ``user``); the model and the history are ignored.

The text streams as one ``TextDelta`` per word, each word carrying the whitespace before
it (``"Echo:"``, ``" hi"``, ``" [image:"``, ``" cat.png]"``), so the deltas concatenate to
the exact text. Then one ``Usage``: ``input_other`` = words in all the request's messages
(system prompt, context and the user message), ``input_cached`` = 0, ``output`` = words
in the reply. Words are what ``str.split()`` separates.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

from astrlite.providers.base import ChatMessage, ProviderEvent, ProviderRequest, TextDelta, Usage

ECHO_PREFIX = "Echo:"
USER_ROLE = "user"

# A word with the whitespace before it, or whitespace closing the text.
_DELTA = re.compile(r"\s*\S+|\s+\Z")


def split_deltas(text: str) -> list[str]:
    """Cut ``text`` into word deltas whose concatenation is exactly ``text``."""
    return _DELTA.findall(text)


def count_words(text: str) -> int:
    return len(text.split())


def request_words(request: ProviderRequest) -> int:
    """The input size of a request, in words, over all its messages."""
    return sum(count_words(message.text) for message in request.messages)


def user_message(request: ProviderRequest) -> ChatMessage | None:
    """The message being answered: the request's last message, when it is the user's."""
    if request.messages and request.messages[-1].role == USER_ROLE:
        return request.messages[-1]
    return None


def echo_text(message: ChatMessage | None) -> str:
    if message is None:
        return ECHO_PREFIX
    media = [f"[{item.kind}: {item.filename}]" for item in message.attachments]
    return " ".join(part for part in (ECHO_PREFIX, message.text, *media) if part)


def echo_events(request: ProviderRequest) -> Iterator[ProviderEvent]:
    """The echo reply's events; the scripted provider reuses them as its default."""
    text = echo_text(user_message(request))
    for delta in split_deltas(text):
        yield TextDelta(delta)
    yield Usage(input_other=request_words(request), input_cached=0, output=count_words(text))


class EchoProvider:
    def __init__(self, provider_id: str = "echo") -> None:
        self.id = provider_id

    async def reply(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        for event in echo_events(request):
            yield event
