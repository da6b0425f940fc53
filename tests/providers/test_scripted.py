from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from astrlite.providers.base import (
    ChatMessage,
    MediaReply,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from astrlite.providers.scripted import ScriptedProvider, load_rules, parse_rules


def provider(raw: dict[str, Any], data_dir: Path = Path("/nonexistent")) -> ScriptedProvider:
    return ScriptedProvider("rules", parse_rules(raw, "rules.json"), data_dir)


def ask(text: str) -> ProviderRequest:
    return ProviderRequest((ChatMessage("system", "sys"), ChatMessage("user", text)), None, True)


async def collect(p: ScriptedProvider, text: str) -> list[ProviderEvent]:
    return [event async for event in p.reply(ask(text))]


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


RULES = {
    "rules": [
        {"match": "hello", "reply": "Hi there!"},
        {"regex": r"^weather in (\w+)(?: (today))?$", "reply": r"Sunny in $1\2, \1."},
        {"regex": "hello", "reply": "contains hello"},
    ],
    "fallback": {"reply": "No idea."},
}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("hello", "Hi there!"),
        ("weather in Paris", "Sunny in Paris, Paris."),
        ("weather in Oslo today", "Sunny in Oslotoday, Oslo."),
        ("oh hello you", "contains hello"),
        ("hello ", "contains hello"),
        ("something else", "No idea."),
    ],
)
async def test_first_matching_rule_wins(text: str, reply: str) -> None:
    events = await collect(provider(RULES), text)
    assert text_of(events) == reply
    assert events[-1] == Usage(1 + len(text.split()), 0, len(reply.split()))


@pytest.mark.anyio
async def test_no_rule_and_no_fallback_echoes() -> None:
    events = await collect(provider({"rules": []}), "ping me")
    assert events == [TextDelta("Echo:"), TextDelta(" ping"), TextDelta(" me"), Usage(3, 0, 3)]


@pytest.mark.anyio
async def test_full_rule_order_ids_and_usage(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "sun.png").write_bytes(b"png")
    rule = {
        "match": "go",
        "reasoning": "Think first.",
        "tool_call": {"name": "weather", "args": {"city": "Paris"}, "result": "sunny"},
        "reply": "It is sunny.",
        "attachment": {"path": "media/sun.png", "kind": "image"},
        "usage": {"input": 12, "output": 4},
    }
    p = provider({"rules": [rule]}, tmp_path)
    events = await collect(p, "go")
    sun = str(tmp_path / "media" / "sun.png")
    assert events == [
        ReasoningDelta("Think"),
        ReasoningDelta(" first."),
        ToolCall("call_1", "weather", {"city": "Paris"}),
        ToolResult("call_1", "sunny"),
        TextDelta("It"),
        TextDelta(" is"),
        TextDelta(" sunny."),
        MediaReply("image", sun, "sun.png"),
        Usage(12, 0, 4),
    ]
    again = await collect(p, "go")
    assert ToolCall("call_2", "weather", {"city": "Paris"}) in again


@pytest.mark.anyio
async def test_absolute_attachment_path_and_filename(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"mp4")
    attachment = {"path": str(clip), "kind": "video", "filename": "holiday.mp4"}
    p = provider({"fallback": {"attachment": attachment}}, tmp_path / "elsewhere")
    events = await collect(p, "anything")
    assert MediaReply("video", str(clip), "holiday.mp4") in events


def test_missing_attachment_file_is_a_start_up_error(tmp_path: Path) -> None:
    raw = {"rules": [{"match": "x", "attachment": {"path": "nope.png", "kind": "image"}}]}
    with pytest.raises(
        ValueError, match=r"^rules.json: rules\[0\].attachment.path: file not found"
    ):
        provider(raw, tmp_path)


@pytest.mark.anyio
async def test_error_comes_after_the_reply_text() -> None:
    rule = {"match": "fail", "reply": "Partial answer", "error": "upstream said no"}
    p = provider({"rules": [rule]})
    seen: list[ProviderEvent] = []
    with pytest.raises(ProviderError, match=r"^upstream said no$"):
        async for event in p.reply(ask("fail")):
            seen.append(event)
    assert seen == [TextDelta("Partial"), TextDelta(" answer")]


@pytest.mark.anyio
async def test_delay_is_slept_before_each_delta(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    p = provider({"fallback": {"reasoning": "r", "reply": "a b", "delay_ms": 250}})
    await collect(p, "x")
    assert slept == [0.25, 0.25, 0.25]


def test_load_rules_and_from_file(tmp_path: Path) -> None:
    (tmp_path / "rules.json").write_text(json.dumps(RULES), encoding="utf-8")
    assert len(load_rules(tmp_path / "rules.json").rules) == 3
    assert ScriptedProvider.from_file("r", "rules.json", tmp_path).id == "r"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{", "invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes"),
        ("[]", "top level: expected an object"),
        ('{"rule": []}', "top level: unknown key 'rule'"),
        ('{"rules": {}}', "rules: expected a list"),
        ('{"rules": [{"match": "a"}, {"match": 3}]}', "rules[1].match: expected a string"),
        ('{"rules": [{"reply": "a"}]}', 'rules[0]: needs exactly one of "match" and "regex"'),
        (
            '{"rules": [{"match": "a", "regex": "a"}]}',
            'rules[0]: needs exactly one of "match" and "regex"',
        ),
        ('{"rules": [{"regex": "("}]}', "rules[0].regex: invalid regular expression: "),
        (
            '{"rules": [{"regex": "(a)", "reply": "$2"}]}',
            "rules[0].reply: $2 refers to a group the regex does not have",
        ),
        ('{"rules": [{"match": "a", "replay": "b"}]}', "rules[0]: unknown key 'replay'"),
        ('{"fallback": {"match": "a"}}', "fallback: unknown key 'match'"),
        ('{"fallback": {"delay_ms": -1}}', "fallback.delay_ms: expected an integer >= 0"),
        ('{"fallback": {"delay_ms": true}}', "fallback.delay_ms: expected an integer >= 0"),
        ('{"fallback": {"tool_call": {"args": {}}}}', "fallback.tool_call.name: missing"),
        (
            '{"fallback": {"tool_call": {"name": "t", "args": []}}}',
            "fallback.tool_call.args: expected an object",
        ),
        (
            '{"fallback": {"attachment": {"path": "a", "kind": "gif"}}}',
            "fallback.attachment.kind: expected one of image, record, file, video",
        ),
        (
            '{"fallback": {"attachment": {"path": "", "kind": "file"}}}',
            "fallback.attachment.path: is empty",
        ),
        ('{"fallback": {"usage": {"input": 1}}}', "fallback.usage.output: missing"),
        ('{"fallback": {"error": 5}}', "fallback.error: expected a string"),
    ],
)
def test_invalid_files_name_the_file_and_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"{path}: {problem}")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_rules(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_rules(tmp_path / "bad.json")
