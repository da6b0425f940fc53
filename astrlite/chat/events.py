"""Builders for the wire events of a chat stream (docs/compatibility.md M5), keys in wire order.

Each builder returns a fresh dict ready for ``sse.encode_event``. The key order is part of
the contract: clients compare the bytes, so never reorder the literals below.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from astrlite.sse import DATA_PREFIX, EVENT_END, encode_json, encode_json_string

Event = dict[str, Any]

CHAIN_REASONING = "reasoning"
CHAIN_TOOL_CALL = "tool_call"
CHAIN_TOOL_CALL_RESULT = "tool_call_result"

# The prefix of a media event's data; video has none because the webchat side never
# sends video (M12).
MEDIA_TAGS: Mapping[str, str] = {"image": "[IMAGE]", "record": "[RECORD]", "file": "[FILE]"}
# Between a 4.27 file event's stored name and its display name (stored names have none).
DISPLAY_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class AgentStats:
    """One agent run's token usage and unix times (seconds, floats)."""

    input_other: int
    input_cached: int
    output: int
    start_time: float
    end_time: float
    time_to_first_token: float
    context_tokens: bool = False  # 4.27 adds `current_context_tokens` (the input)

    def to_dict(self) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "token_usage": {
                "input_other": self.input_other,
                "input_cached": self.input_cached,
                "output": self.output,
            }
        }
        if self.context_tokens:
            stats["current_context_tokens"] = self.input_other + self.input_cached
        return {
            **stats,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "time_to_first_token": self.time_to_first_token,
        }


def session_id_event(session_id: str) -> Event:
    """Always the first event of a stream."""
    return {"type": "session_id", "data": None, "session_id": session_id}


def plain_event(
    data: str, *, streaming: bool, message_id: str, chain_type: str | None = None
) -> Event:
    """A text delta (streaming) or a full text (not streaming); chain_type marks reasoning."""
    return {
        "type": "plain",
        "data": data,
        "streaming": streaming,
        "chain_type": chain_type,
        "message_id": message_id,
    }


_PLAIN_HEAD = DATA_PREFIX + b'{"type": "plain", "data": '


class PlainDeltas:
    """``encode_event(plain_event(text, streaming=True, ...))`` for the deltas of one turn,
    byte for byte, for the cost of encoding the text alone (once per streamed token)."""

    __slots__ = ("_tail",)

    def __init__(self, message_id: str, chain_type: str | None = None) -> None:
        # The event's keys after "data", as json.dumps writes them for the whole dict.
        rest = {"streaming": True, "chain_type": chain_type, "message_id": message_id}
        self._tail = b", " + encode_json(rest)[1:] + EVENT_END

    def encode(self, text: str) -> bytes:
        return _PLAIN_HEAD + encode_json_string(text) + self._tail


# The SSE frames of the events every turn ends with, from templates: byte for byte
# encode_event of the builder's dict, for the cost of encoding its strings alone.
_SESSION_ID_HEAD = DATA_PREFIX + b'{"type": "session_id", "data": null, "session_id": '
_COMPLETE_HEAD = DATA_PREFIX + b'{"type": "complete", "data": '
_SAVED_HEAD = DATA_PREFIX + b'{"type": "message_saved", "data": {"id": '
_END_HEAD = DATA_PREFIX + b'{"type": "end", "data": "", "streaming": false, "message_id": '
_CLOSE = b"}" + EVENT_END


def session_id_wire(session_id: str) -> bytes:
    """``encode_event(session_id_event(session_id))``."""
    return _SESSION_ID_HEAD + encode_json_string(session_id) + _CLOSE


def complete_wire(text: str, reasoning: str, *, message_id: str) -> bytes:
    """``encode_event(complete_event(text, reasoning, message_id=message_id))``."""
    return b"".join(
        (
            _COMPLETE_HEAD,
            encode_json_string(text),
            b', "reasoning": ',
            encode_json_string(reasoning),
            b', "streaming": true, "message_id": ',
            encode_json_string(message_id),
            _CLOSE,
        )
    )


def message_saved_wire(row_id: int, created_at: str, checkpoint_id: str | None = None) -> bytes:
    """``encode_event(message_saved_event(row_id, created_at, checkpoint_id))``."""
    checkpoint = (
        b""
        if checkpoint_id is None
        else b', "llm_checkpoint_id": ' + encode_json_string(checkpoint_id)
    )
    created = encode_json_string(created_at)
    return b'%s%d, "created_at": %s%s}%s' % (_SAVED_HEAD, row_id, created, checkpoint, _CLOSE)


def end_wire(message_id: str) -> bytes:
    """``encode_event(end_event(message_id))``."""
    return _END_HEAD + encode_json_string(message_id) + _CLOSE


def tool_call_event(
    call_id: str, name: str, args: Mapping[str, Any], ts: float, *, message_id: str
) -> Event:
    """The agent calls a tool; ``streaming`` is false in both modes (M6)."""
    data = json.dumps({"id": call_id, "name": name, "args": args, "ts": ts})
    return plain_event(data, streaming=False, message_id=message_id, chain_type=CHAIN_TOOL_CALL)


def tool_call_result_event(call_id: str, ts: float, result: str, *, message_id: str) -> Event:
    """The tool returned; ``streaming`` is false in both modes (M6)."""
    data = json.dumps({"id": call_id, "ts": ts, "result": result})
    return plain_event(
        data, streaming=False, message_id=message_id, chain_type=CHAIN_TOOL_CALL_RESULT
    )


def media_event(
    kind: str,
    stored_name: str,
    *,
    streaming: bool,
    message_id: str,
    display_name: str | None = None,
) -> Event:
    """The bot sends a stored file: ``{"type": "image", "data": "[IMAGE]<name>", ...}``.

    ``kind`` is image, record or file (KeyError otherwise). No ``chain_type`` key. A
    ``display_name`` (4.27, files only) follows the stored name: ``[FILE]<name>|<display>``.
    """
    data = MEDIA_TAGS[kind] + stored_name
    if display_name is not None and kind == "file":
        data += DISPLAY_SEPARATOR + display_name
    return {"type": kind, "data": data, "streaming": streaming, "message_id": message_id}


def media_names(event: Mapping[str, Any]) -> tuple[str, str | None]:
    """The stored file name inside a media event's data (the tag removed), and the
    display name a 4.27 file event carries after it (else None)."""
    tag = MEDIA_TAGS[event["type"]]
    data = str(event["data"])
    name = data[len(tag) :] if data.startswith(tag) else data
    if event["type"] == "file" and DISPLAY_SEPARATOR in name:
        stored, display = name.split(DISPLAY_SEPARATOR, 1)
        return stored, display
    return name, None


def media_part(event: Mapping[str, Any], attachment_id: str) -> dict[str, Any]:
    """A media event as a history message part. With a display name (4.27) the part's
    ``filename`` is it, and ``stored_filename`` the stored name when they differ."""
    stored, display = media_names(event)
    part = {"type": event["type"], "attachment_id": attachment_id, "filename": display or stored}
    if display is not None and display != stored:
        part["stored_filename"] = stored
    return part


def agent_stats_event(stats: AgentStats) -> Event:
    """Already re-wrapped as the route sends it: no ``streaming`` or ``message_id``."""
    return {"type": "agent_stats", "data": stats.to_dict()}


def complete_event(text: str, reasoning: str, *, message_id: str) -> Event:
    """The end of a streamed LLM reply: the full text and the full reasoning (or "")."""
    return {
        "type": "complete",
        "data": text,
        "reasoning": reasoning,
        "streaming": True,
        "message_id": message_id,
    }


def proactive_complete_event(data: str, *, message_id: str) -> Event:
    """Closes a message injected into a live stream; ``data`` is its last event's data."""
    return {
        "type": "complete",
        "data": data,
        "streaming": True,
        "chain_type": None,
        "message_id": message_id,
    }


def message_saved_event(row_id: int, created_at: str, checkpoint_id: str | None = None) -> Event:
    """Sent after each bot history row is written; ``created_at`` is ISO 8601 UTC. The
    4.27 profile adds the turn's ``llm_checkpoint_id``."""
    return {"type": "message_saved", "data": saved_data(row_id, created_at, checkpoint_id)}


def end_event(message_id: str) -> Event:
    """Always the last event; the stream closes after it."""
    return {"type": "end", "data": "", "streaming": False, "message_id": message_id}


# -- the run events of the 4.27 profile (Profile.run_events) ----------------------------


def saved_data(row_id: int, created_at: str, checkpoint_id: str | None) -> dict[str, Any]:
    """The data of ``message_saved`` / ``user_message_saved``; 4.27 adds the checkpoint."""
    data: dict[str, Any] = {"id": row_id, "created_at": created_at}
    if checkpoint_id is not None:
        data["llm_checkpoint_id"] = checkpoint_id
    return data


def user_message_saved_event(row_id: int, created_at: str, checkpoint_id: str) -> Event:
    """After the turn's user row is written, before the run starts."""
    return {"type": "user_message_saved", "data": saved_data(row_id, created_at, checkpoint_id)}


def run_started_event(run_id: str) -> Event:
    """The run is about to call the provider; ``run_id`` is the turn's message_id."""
    return {
        "type": "run_started",
        "data": {"run_id": run_id},
        "streaming": False,
        "message_id": run_id,
    }


def attachment_saved_event(attachment_id: str, kind: str) -> Event:
    """Right after each bot media event: the attachment a client downloads it by."""
    return {"type": "attachment_saved", "data": {"id": attachment_id, "type": kind}}


def run_snapshot_event(state: dict[str, Any]) -> Event:
    """The first event of a resumed stream: everything the run accumulated so far."""
    return {"type": "run_snapshot", "data": state}
