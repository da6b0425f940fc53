"""One platform's requests: its client and timeout, answers read whole and bounded, and
every failure a SendError from which the platform's secrets are scrubbed."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from astrlite import __version__
from astrlite.im.base import SendError
from astrlite.im.body import Body
from astrlite.outbound import HttpClientError
from astrlite.outbound.client import Client
from astrlite.outbound.entries import ConnectionSettings
from astrlite.outbound.registry import ClientRegistry

# Bot APIs answer with the sent message object, a few KiB; anything near this is not
# an API answer (a proxy's error page, a wrong URL serving a file).
MAX_ANSWER_BYTES = 1024 * 1024
# What is quoted of an answer that is text but not the API's JSON.
QUOTED_CHARS = 200
USER_AGENT = f"astrlite/{__version__}"
REDACTED = "[redacted]"
# Shorter strings turn up inside ordinary words ("s" in "closed"); scrubbing them would
# garble every message, and a secret that short protects nothing anyway.
MIN_SCRUBBED_CHARS = 8


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str  # without parameters, lower case; "" when absent
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is anything else."""
        try:
            value = json.loads(self.body)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None

    def summary(self) -> str:
        """``HTTP 502`` with the start of a plain-text or JSON body, or its type."""
        head = f"HTTP {self.status}"
        if self.content_type in ("text/plain", "application/json"):
            text = " ".join(self.body.decode("utf-8", "replace").split())[:QUOTED_CHARS]
            return f"{head}: {text}" if text else head
        return f"{head} ({self.content_type or 'no content type'})" if self.body else head


class Outbound:
    def __init__(
        self, client: Callable[[], Client], timeout: float, secrets: Sequence[str] = ()
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._secrets = tuple(s for s in secrets if len(s) >= MIN_SCRUBBED_CHARS)

    @classmethod
    def through(
        cls, clients: ClientRegistry, settings: ConnectionSettings, secrets: Sequence[str] = ()
    ) -> Outbound:
        """A platform's way out; ``secrets`` are what its requests carry (tokens), kept
        out of its errors. ValueError when its ca_file cannot be loaded."""
        return cls(clients.client_for(settings), settings.timeout, secrets)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    async def post(
        self,
        url: str,
        content_type: str,
        body: bytes | Body,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Answer:
        """POST and read the whole answer; SendError when there is none to read."""
        all_headers = [("Content-Type", content_type), ("User-Agent", USER_AGENT), *headers]
        if isinstance(body, Body):
            all_headers.append(("Content-Length", str(body.length)))
        try:
            async with self._client().request(
                "POST",
                url,
                headers=all_headers,
                body=body,
                connect_timeout=self._timeout,
                read_timeout=self._timeout,
            ) as response:
                raw_type = response.header("content-type") or ""
                content_type = raw_type.split(";", 1)[0].strip().lower()
                return Answer(response.status, content_type, await response.read(MAX_ANSWER_BYTES))
        except HttpClientError as exc:
            raise SendError(self.scrub(str(exc))) from None
