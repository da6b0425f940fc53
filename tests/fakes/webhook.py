"""A webhook receiver that checks what a careful one checks: the method, the JSON body,
a fresh timestamp and the HMAC-SHA256 signature over "<timestamp>.<body>". A bad
signature is 401. ``statuses`` scripts the answers to come (then 200 for good)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from anyio.abc import ByteStream

from tests.fakes.http_server import FakeServer, Received, response, serve

MAX_AGE_SECONDS = 300  # what Stripe and Slack allow before calling a delivery a replay


@dataclass
class Receiver:
    server: FakeServer
    secret: str
    statuses: list[int] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url + "/hook"


def verify(secret: str, request: Received) -> bool:
    timestamp = request.header("x-astrlite-timestamp") or ""
    signature = request.header("x-astrlite-signature") or ""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    signed = timestamp.encode() + b"." + request.body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, f"sha256={expected}")


def handle(receiver: Receiver, request: Received) -> bytes:
    if request.method != "POST" or request.target != "/hook":
        return response(404, (("content-type", "text/plain"),), b"no such hook")
    if request.header("content-type") != "application/json":
        return response(415, (("content-type", "text/plain"),), b"expected JSON")
    if not verify(receiver.secret, request):
        return response(401, (("content-type", "text/plain"),), b"bad signature")
    if receiver.statuses:
        status = receiver.statuses.pop(0)
        return response(status, (("content-type", "text/plain"),), b"try again later")
    receiver.delivered.append(json.loads(request.body))
    return response(204)


@asynccontextmanager
async def receiver(secret: str) -> AsyncIterator[Receiver]:
    holder: list[Receiver] = []

    async def handler(request: Received, stream: ByteStream) -> bool:
        await stream.send(handle(holder[0], request))
        return True

    async with serve(handler) as server:
        holder.append(Receiver(server, secret))
        yield holder[0]
