"""AstrBot's JSON envelope {"status","message","data"} (observed §1.2), byte for byte."""

from __future__ import annotations

import json
from typing import Any

JSON_CONTENT_TYPE = b"application/json"
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def ok(data: Any = None, message: str | None = None) -> bytes:
    body = {"status": "ok", "message": message, "data": {} if data is None else data}
    return _encoder.encode(body).encode("ascii") + b"\n"


def error(message: str) -> bytes:
    body = {"status": "error", "message": message, "data": None}
    return _encoder.encode(body).encode("ascii") + b"\n"
