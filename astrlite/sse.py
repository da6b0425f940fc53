"""Server-sent events as AstrBot frames them (observed §4.1.3), as plain bytes.

Every event is exactly ``data: <json>\\n\\n`` where the JSON is ``json.dumps(event,
ensure_ascii=False)``: spaces after ``,`` and ``:``, raw UTF-8, keys in the dict's order.
No ``id:``, ``event:`` or ``retry:`` fields. The heartbeat (F6) is a comment line.
"""

from __future__ import annotations

import json
from typing import Any

DATA_PREFIX = b"data: "
EVENT_END = b"\n\n"
HEARTBEAT = b": heartbeat\n\n"

# The server adds Transfer-Encoding: chunked itself (no Content-Length on a stream).
SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
)


def encode_event(event: dict[str, Any]) -> bytes:
    """Frame one event dict as an SSE ``data:`` block."""
    text = json.dumps(event, ensure_ascii=False)
    # A lone surrogate (valid in JSON input, e.g. "\ud800") cannot be UTF-8 encoded. It can
    # only sit inside a JSON string, where backslashreplace writes it as the JSON escape
    # \udXXX, which decodes back to the same string: the stream never breaks on it.
    return DATA_PREFIX + text.encode("utf-8", "backslashreplace") + EVENT_END
