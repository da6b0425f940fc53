"""The ``webhook`` platform: POSTs every message, signed, to a URL of your own.

Entry: ``{"id", "type": "webhook", "enable", "url", "secret", "retries" (default 2),
"timeout", "ca_file", "proxy"}``. The body is ``{"umo", "message": [parts], "sent_at"}``,
each media part with its file inline as base64 (``data``). Headers:
``X-Astrlite-Timestamp`` (unix seconds) and ``X-Astrlite-Signature: sha256=<hex>``, the
HMAC-SHA256 under ``secret`` of ``"<timestamp>.<body>"``; a receiver recomputes it and
refuses stale timestamps. A 5xx answer or a connection failure is retried after a
growing pause; a 4xx answer never is (the receiver said no).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from astrlite import sources
from astrlite.im.base import Outgoing, SendError
from astrlite.im.body import Body, InlineFiles
from astrlite.im.outbound import Outbound
from astrlite.im.outgoing_message import Media, Part, ReplyCheck, describe
from astrlite.im.umo import Umo
from astrlite.outbound.entries import CONNECTION_KEYS, Entry
from astrlite.outbound.registry import ClientRegistry
from astrlite.store import clock

KEYS = ("url", "secret", "retries", *CONNECTION_KEYS)
DEFAULT_RETRIES = 2
# Pauses between attempts: 0.5 s, 1 s, 2 s, ... at most 5 s, so a receiver restarting
# gets a moment while the caller of /im/message is not kept waiting long.
FIRST_PAUSE = 0.5
MAX_PAUSE = 5.0
TIMESTAMP_HEADER = "X-Astrlite-Timestamp"
SIGNATURE_HEADER = "X-Astrlite-Signature"


class WebhookPlatform:
    def __init__(self, url: str, secret: str, retries: int, outbound: Outbound) -> None:
        self._url = url
        self._secret = secret.encode()
        self._retries = retries
        self._outbound = outbound

    @classmethod
    def from_entry(
        cls, raw: Mapping[str, Any], data_dir: Path, clients: ClientRegistry
    ) -> WebhookPlatform:
        entry = Entry(raw, KEYS)
        secret = entry.text("secret")
        outbound = Outbound.through(clients, entry.connection(data_dir))  # the secret is never sent
        return cls(entry.url("url"), secret, entry.count("retries", DEFAULT_RETRIES), outbound)

    def reply_check(self, umo: Umo) -> ReplyCheck | None:
        return None

    async def send(self, outgoing: Outgoing) -> None:
        inline = InlineFiles()
        document = {
            "umo": str(outgoing.umo),
            "message": [_part(part, inline) for part in outgoing.message.parts],
            "sent_at": clock.now_iso(),
        }
        body = inline.body(document)
        pause = FIRST_PAUSE
        for attempt in range(self._retries + 1):
            if attempt:
                await anyio.sleep(pause)
                pause = min(pause * 2, MAX_PAUSE)
            try:
                answer = await self._outbound.post(
                    self._url, "application/json", body, await self._signed(body)
                )
            except SendError as exc:
                failure = str(exc)
                continue
            if answer.ok:
                return
            if answer.status < 500:
                raise SendError(f"webhook answered {answer.summary()}")
            failure = f"webhook answered {answer.summary()}"
        attempts = self._retries + 1
        raise SendError(f"{failure} (after {attempts} attempts)" if attempts > 1 else failure)

    async def _signed(self, body: Body) -> list[tuple[str, str]]:
        timestamp = str(int(sources.timestamp()))
        mac = hmac.new(self._secret, f"{timestamp}.".encode(), hashlib.sha256)
        async for chunk in body:
            mac.update(chunk)
        return [(TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, f"sha256={mac.hexdigest()}")]


def _part(part: Part, inline: InlineFiles) -> dict[str, Any]:
    described = describe(part)
    if isinstance(part, Media):
        described["data"] = inline.marker(part.file)
    return described
