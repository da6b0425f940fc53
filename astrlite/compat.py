"""The AstrBot version astrlite speaks on the wire: 4.22 (the seed, the default) or 4.27.

Every wire difference between the two is a field of `Profile`; code reads the running
profile's fields (from the services object) and never compares version strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Envelope:
    """The bytes of AstrBot's JSON envelope ``{"status","message","data"}``.

    4.22 (Flask): ``\\u`` escapes, a trailing newline, ``"data":null`` on errors.
    4.27 (Starlette): raw UTF-8, no newline, and no ``data`` key on errors.
    """

    ascii: bool
    newline: bool
    error_data: bool

    def encode(self, body: dict[str, Any]) -> bytes:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=self.ascii)
        # backslashreplace: a lone surrogate from the client is written as its JSON escape.
        data = text.encode("utf-8", "backslashreplace")
        return data + b"\n" if self.newline else data

    def ok(self, data: Any = None, message: str | None = None) -> bytes:
        body = {"status": "ok", "message": message, "data": {} if data is None else data}
        return self.encode(body)

    def error(self, message: str) -> bytes:
        body: dict[str, Any] = {"status": "error", "message": message}
        if self.error_data:
            body["data"] = None
        return self.encode(body)


# Key carriers, by the names http/auth.py knows them by.
BEARER = "bearer"  # Authorization: Bearer <key>
APIKEY = "apikey"  # Authorization: ApiKey <key>
QUERY_API_KEY = "query:api_key"
QUERY_KEY = "query:key"
X_API_KEY = "x-api-key"


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    envelope: Envelope
    # Content-Type of every SSE response.
    sse_content_type: bytes
    # Seconds of silence before `: heartbeat` when --sse-heartbeat is not given.
    sse_heartbeat: float
    # `enable_streaming: null`: True streams; False lets the config's `streaming` decide.
    null_streams: bool
    # The request's `flags` object is read and wins over the top-level fields; booleans
    # are read laxly ("false", 0) and a value that is not one is a 422.
    request_flags: bool
    # Body validation errors on /chat are FastAPI's 422 `{"detail": [...]}`, not the
    # envelope's `Request body must be a JSON object` (F2).
    validation_422: bool
    # The run events: `user_message_saved`, `run_started`, `attachment_saved` after bot
    # media, and `llm_checkpoint_id` in `message_saved`.
    run_events: bool
    # `agent_stats` comes first in the closing events (before a non-streaming reply's
    # text, so that row stores it), and a provider error is sent as the reply's text.
    stats_first: bool
    # `agent_stats` carries `current_context_tokens` (the turn's input tokens).
    context_tokens: bool
    # A `file` event's data is `[FILE]<stored name>|<original name>`, and a file part in
    # history has the original as `filename` and the stored name as `stored_filename`.
    file_display_names: bool
    # A message saved to a webchat session with no live turn (/im/messages) keeps each
    # media part's stored name as `stored_filename` beside the upload's `filename`.
    saved_media_stored_names: bool
    # A bot row keeps text and media in arrival order (4.22: media first, text last).
    arrival_order: bool
    # The order in which key carriers are looked at on HTTP routes; the first non-empty
    # one wins. (The WebSocket route keeps the seed's order in every profile.)
    key_carriers: tuple[str, ...]
    # `admins_id` when config.json does not say (4.22 reserves nothing; 4.27 ships
    # ["astrbot"]).
    default_admins_id: tuple[str, ...]
    # The HTTP status of every /im/message(s) business error; None: the usual rule
    # (200, or the honest code with --http-errors).
    im_error_status: int | None
    # WebSocket frames are compact JSON with raw UTF-8 (4.27), not spaced and escaped.
    ws_compact_frames: bool
    # The close code for a WebSocket message that is not JSON (4.22: 1000, 4.27: 1011).
    ws_invalid_json_close: int
    # A WebSocket `send` is checked for its `message` before its `username` (4.27).
    ws_message_first: bool


SEED = Profile(
    name="4.22",
    envelope=Envelope(ascii=True, newline=True, error_data=True),
    sse_content_type=b"text/event-stream",
    sse_heartbeat=10.0,  # F6; proxies drop idle streams after 30-60 s
    null_streams=False,
    request_flags=False,
    validation_422=False,
    run_events=False,
    stats_first=False,
    context_tokens=False,
    file_display_names=False,
    saved_media_stored_names=False,
    arrival_order=False,
    key_carriers=(QUERY_API_KEY, QUERY_KEY, X_API_KEY, BEARER, APIKEY),
    default_admins_id=(),
    im_error_status=None,
    ws_compact_frames=False,
    ws_invalid_json_close=1000,
    ws_message_first=False,
)
V4_27 = Profile(
    name="4.27",
    envelope=Envelope(ascii=False, newline=False, error_data=False),
    sse_content_type=b"text/event-stream; charset=utf-8",
    sse_heartbeat=1.0,
    null_streams=True,
    request_flags=True,
    validation_422=True,
    run_events=True,
    stats_first=True,
    context_tokens=True,
    file_display_names=True,
    saved_media_stored_names=True,
    arrival_order=True,
    key_carriers=(BEARER, APIKEY, QUERY_API_KEY, QUERY_KEY, X_API_KEY),
    default_admins_id=("astrbot",),
    im_error_status=400,
    ws_compact_frames=True,
    ws_invalid_json_close=1011,
    ws_message_first=True,
)
PROFILES = {profile.name: profile for profile in (SEED, V4_27)}


def parse_profile(text: str) -> str:
    """The profile name for an option value, or a ValueError naming what is accepted."""
    name = text.strip()
    if name not in PROFILES:
        raise ValueError("expected one of " + ", ".join(PROFILES))
    return name
