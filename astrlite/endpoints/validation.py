"""Request bodies as the 4.27 profile validates them (Profile.validation_422): a body
that is not a JSON object, or a field of the wrong type, is a 422 whose ``detail``
lists every problem in FastAPI's words (docs/compatibility.md P4). Pydantic's lax booleans are read
here too (P4 request_flags, M14).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from astrlite.errors import Invalid
from astrlite.http.request import Request

Loc = list[str | int]

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}
NOT_OBJECT = "Input should be a valid dictionary or object to extract fields from"


def problem(kind: str, loc: Loc, msg: str, value: Any, **ctx: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        item["ctx"] = ctx
    return item


async def request_object(request: Request, limit: int, *, validate: bool) -> dict[str, Any]:
    """A JSON request body as an object: with ``validate`` (Profile.validation_422) the
    422s below, else ``Request body must be a JSON object`` (F2)."""
    if not validate:
        return await request.json_object(limit)
    return json_object(await request.read(limit), request.header(b"content-type"))


def json_object(raw: bytes, content_type: bytes | None) -> dict[str, Any]:
    """The body as an object, or Invalid: empty, not JSON, not an object, or not sent
    as JSON (then it is read as a string, as Starlette does)."""
    if not raw:
        raise Invalid([problem("missing", ["body"], "Field required", None)])
    media = (content_type or b"").split(b";")[0].strip().lower()
    if media != b"application/json" and not media.endswith(b"+json"):
        text = raw.decode("utf-8", "replace")
        raise Invalid([problem("model_attributes_type", ["body"], NOT_OBJECT, text)])
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        detail = problem(
            "json_invalid", ["body", error.pos], "JSON decode error", {}, error=error.msg
        )
        raise Invalid([detail]) from None
    except (ValueError, RecursionError):  # bad UTF-8, ints over Python's digit limit
        raise Invalid([problem("json_invalid", ["body", 0], "JSON decode error", {})]) from None
    if not isinstance(value, dict):
        raise Invalid([problem("model_attributes_type", ["body"], NOT_OBJECT, value)])
    return value


def lax_bool(value: Any, loc: Loc, problems: list[dict[str, Any]]) -> bool | None:
    """Pydantic's lax bool: True/False, 0/1, and words like "false"; a problem otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, (str, int, float)):
        msg = "Input should be a valid boolean, unable to interpret input"
        problems.append(problem("bool_parsing", loc, msg, value))
    else:
        problems.append(problem("bool_type", loc, "Input should be a valid boolean", value))
    return None


def optional_strings(
    body: dict[str, Any], names: Sequence[str], problems: list[dict[str, Any]]
) -> None:
    """Each named field, when present, must be a string or null."""
    for name in names:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            msg = "Input should be a valid string"
            problems.append(problem("string_type", ["body", name], msg, value))
