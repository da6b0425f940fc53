"""The ``onebot`` platform: the OneBot v11 HTTP API, as QQ bot frameworks such as NapCat
and Lagrange expose it.

Entry: ``{"id", "type": "onebot", "enable", "base_url", "access_token", "timeout",
"ca_file", "proxy"}``. ``<id>:FriendMessage:<user_id>`` calls ``send_private_msg``,
``<id>:GroupMessage:<group_id>`` calls ``send_group_msg``; the whole message is one
call, its parts as segments (media inline as ``base64://``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from astrlite.im.base import Outgoing, SendError
from astrlite.im.body import InlineFiles
from astrlite.im.outbound import Answer, Outbound
from astrlite.im.outgoing_message import Media, Part, ReplyCheck, Text
from astrlite.im.umo import FRIEND, GROUP, Umo
from astrlite.outbound.entries import CONNECTION_KEYS, Entry
from astrlite.outbound.registry import ClientRegistry

KEYS = ("base_url", "access_token", *CONNECTION_KEYS)
# message type -> (action, the parameter naming the target)
ACTIONS: Mapping[str, tuple[str, str]] = {
    FRIEND: ("send_private_msg", "user_id"),
    GROUP: ("send_group_msg", "group_id"),
}
MEDIA_SEGMENTS = frozenset({"image", "record", "video"})  # v11 has no segment for files
# OneBot v11 communication/http: the statuses an implementation answers before it runs
# the action (every action that runs answers 200, with its outcome in `retcode`).
HTTP_MEANINGS: Mapping[int, str] = {
    400: "malformed request body",
    401: "access token missing",
    403: "access token rejected",
    404: "no such action",
    406: "content type not supported",
}
# retcode 0: done; 1: accepted for asynchronous processing, the outcome unknowable.
ACCEPTED_RETCODES = (0, 1)
_NUMBER = re.compile(r"\d+")


class OneBotPlatform:
    def __init__(self, base_url: str, access_token: str, outbound: Outbound) -> None:
        self._base_url = base_url
        self._headers = [("Authorization", f"Bearer {access_token}")] if access_token else []
        self._outbound = outbound

    @classmethod
    def from_entry(
        cls, raw: Mapping[str, Any], data_dir: Path, clients: ClientRegistry
    ) -> OneBotPlatform:
        entry = Entry(raw, KEYS)
        token = entry.token("access_token", required=False)
        outbound = Outbound.through(clients, entry.connection(data_dir), secrets=(token,))
        return cls(entry.url("base_url"), token, outbound)

    def reply_check(self, umo: Umo) -> ReplyCheck | None:
        return None

    async def send(self, outgoing: Outgoing) -> None:
        umo = outgoing.umo
        if umo.message_type not in ACTIONS:
            raise SendError(f"onebot cannot send {umo.message_type} messages")
        if any(media.kind not in MEDIA_SEGMENTS for media in outgoing.message.media):
            raise SendError("onebot cannot send file parts")
        action, target = ACTIONS[umo.message_type]
        inline = InlineFiles()
        document = {
            target: int(umo.session) if _NUMBER.fullmatch(umo.session) else umo.session,
            "message": [_segment(part, inline) for part in outgoing.message.parts],
        }
        answer = await self._outbound.post(
            f"{self._base_url}/{action}", "application/json", inline.body(document), self._headers
        )
        _check(answer)


def _segment(part: Part, inline: InlineFiles) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "data": {"text": part.text}}
    if isinstance(part, Media):
        return {"type": part.kind, "data": {"file": "base64://" + inline.marker(part.file)}}
    return {"type": "reply", "data": {"id": part.message_id}}


def _check(answer: Answer) -> None:
    if answer.status != 200:
        meaning = HTTP_MEANINGS.get(answer.status)
        raise SendError(f"HTTP {answer.status}: {meaning}" if meaning else answer.summary())
    reply = answer.json_object()
    if reply is None or "retcode" not in reply:
        raise SendError(f"{answer.summary()}, not a OneBot answer")
    retcode = reply["retcode"]
    if retcode in ACCEPTED_RETCODES:
        return
    words = reply.get("wording") or reply.get("message") or reply.get("msg")
    raise SendError(f"{words} (retcode {retcode})" if words else f"retcode {retcode}")
