"""The built-in ``webchat`` platform (docs/compatibility.md M12): always running, never listed.

The umo's session is a session id, or the event form ``webchat!<user>!<session_id>``.
While a turn of that session runs, the message goes into its live stream (one event per
part, then the proactive ``complete``) and the turn saves it; otherwise it is saved
straight to the session's history as one bot row. Media are copied into new attachments,
owned by the calling key. A reply part may quote only a row of the same session (F13);
replies and videos are then left out, as the web chat shows neither. Nothing checks that
the session exists or who owns it: keys are trusted backend credentials (M12).
"""

from __future__ import annotations

from typing import Any

from astrlite.chat.live import ProactivePart
from astrlite.chat.runner import ChatService
from astrlite.chat.user_message import row_id_of
from astrlite.files.attachments import AttachmentRow
from astrlite.im.base import Outgoing, SendError
from astrlite.im.outgoing_message import FILE_NOT_FOUND, Media, ReplyCheck, Text
from astrlite.im.umo import Umo

EVENT_FORM_PREFIX = "webchat!"
NOT_SHOWN = "video"  # the web chat's events have no video (M12)


def session_of(umo: Umo) -> str:
    fields = umo.session.split("!", 2)
    if umo.session.startswith(EVENT_FORM_PREFIX) and len(fields) == 3:
        return fields[2]
    return umo.session


class WebchatPlatform:
    def __init__(self, chat: ChatService) -> None:
        self._chat = chat

    def reply_check(self, umo: Umo) -> ReplyCheck | None:
        session_id = session_of(umo)
        store = self._chat.store

        def allowed(message_id: Any) -> bool:
            row_id = row_id_of(message_id)
            return row_id is not None and store.row_in_session(row_id, session_id) is not None

        return allowed

    async def send(self, outgoing: Outgoing) -> None:
        session_id = session_of(outgoing.umo)
        live: list[ProactivePart] = []
        saved: list[dict[str, Any]] = []
        stored_names = self._chat.profile.saved_media_stored_names
        for part in outgoing.message.parts:
            if isinstance(part, Text):
                live.append(ProactivePart("plain", part.text))
                saved.append({"type": "plain", "text": part.text})
            elif isinstance(part, Media) and part.kind != NOT_SHOWN:
                copy = await self._copy(part, outgoing.key_id)
                pushed = ProactivePart(
                    copy.kind, copy.stored_name, copy.attachment_id, copy.original_name
                )
                live.append(pushed)
                row_part = {
                    "type": copy.kind,
                    "attachment_id": copy.attachment_id,
                    "filename": copy.original_name,
                }
                if stored_names and copy.stored_name != copy.original_name:
                    row_part["stored_filename"] = copy.stored_name
                saved.append(row_part)
        if not live or self._chat.inject(session_id, live):
            return
        await self._chat.store.add_bot_row(session_id, {"type": "bot", "message": saved})

    async def _copy(self, media: Media, key_id: str) -> AttachmentRow:
        attachments = self._chat.attachments
        row = media.attachment
        try:
            return await attachments.store_copy(
                attachments.absolute(row),
                filename=row.original_name,
                kind=row.kind,
                owner_key_id=key_id,
            )
        except OSError:
            raise SendError(FILE_NOT_FOUND.format(row.attachment_id)) from None
