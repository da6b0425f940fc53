from __future__ import annotations

import json

import pytest

from astrlite.compat import SEED, V4_27
from astrlite.sse import HEARTBEAT, encode_event, encode_json_string, json_dumps, sse_headers

VALUES = [
    {"type": "bot", "message": [{"type": "plain", "text": '你好 "x" \\ \n🤔'}], "n": None},
    {"stats": {"start_time": 1796572078.3230693, "ttft": 0.0001234, "inf": float("inf")}},
    ["x\ud800y", 1, -2.5, True, False, [], {}, {"": ""}],
    "just a string",
    12,
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_json_dumps_writes_what_json_dumps_writes(value: object, ensure_ascii: bool) -> None:
    assert json_dumps(ensure_ascii=ensure_ascii)(value) == json.dumps(
        value, ensure_ascii=ensure_ascii
    )


def test_frame_matches_the_original_byte_for_byte() -> None:
    event = {"type": "session_id", "data": None, "session_id": "sess-stream-1"}
    expected = b'data: {"type": "session_id", "data": null, "session_id": "sess-stream-1"}\n\n'
    assert encode_event(event) == expected


def test_non_ascii_is_raw_utf8_and_key_order_is_kept() -> None:
    event = {"z": "LLM 响应错误: boom 🤔", "a": [1, 2.5, True]}
    frame = encode_event(event)
    assert frame == 'data: {"z": "LLM 响应错误: boom 🤔", "a": [1, 2.5, true]}\n\n'.encode()


def test_newlines_inside_data_stay_escaped_in_one_line() -> None:
    frame = encode_event({"data": "a\nb\r\n"})
    assert frame == b'data: {"data": "a\\nb\\r\\n"}\n\n'
    assert frame.count(b"\n") == 2


def test_lone_surrogate_becomes_a_json_escape() -> None:
    frame = encode_event({"data": "x\ud800y"})
    assert frame == b'data: {"data": "x\\ud800y"}\n\n'
    assert json.loads(frame[len(b"data: ") :]) == {"data": "x\ud800y"}


def test_heartbeat_and_headers() -> None:
    assert HEARTBEAT == b": heartbeat\n\n"
    assert sse_headers(SEED) == (
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache"),
        (b"connection", b"keep-alive"),
    )
    assert sse_headers(V4_27)[0] == (b"content-type", b"text/event-stream; charset=utf-8")


def test_events_encode_as_json_dumps_does() -> None:
    values: list[object] = [
        {"a": 1.5e-05, "b": float("nan"), "c": -float("inf"), "d": 10**30, "e": None},
        {"nested": [{"x": [1, [2, {"y": "z"}]]}, (1, 2)], "bool": False},
        "a bare string with \u00e9 and \u2028",
        [],
    ]
    for value in values:
        expected = json.dumps(value, ensure_ascii=False).encode()
        assert encode_event(value) == b"data: " + expected + b"\n\n"  # type: ignore[arg-type]


def test_a_value_json_cannot_encode_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode_event({"data": object()})


def test_a_string_encodes_as_json_dumps_does() -> None:
    for text in ("plain", 'quote " and \\ slash', "line\nbreak\t", "é 响应 🤔", "x\ud800y", ""):
        expected = json.dumps(text, ensure_ascii=False).encode("utf-8", "backslashreplace")
        assert encode_json_string(text) == expected
