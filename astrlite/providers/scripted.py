"""The ``scripted`` provider: replies chosen by rules from a JSON file, for demos and tests.

Config entry: ``{"id": "rules", "type": "scripted", "rules_file": "rules.json"}``; a
relative ``rules_file`` is relative to the data directory. The file is read and checked at
start-up; an error names the file, where and what, e.g.
``rules.json: rules[2].match: expected a string``. The format::

    {
      "rules": [
        {"match": "hello", "reply": "Hi there!"},
        {"regex": "^weather in (\\\\w+)$", "reply": "Sunny in $1.",
         "reasoning": "The user wants the weather.",
         "tool_call": {"name": "get_weather", "args": {"city": "Paris"}, "result": "sunny"},
         "attachment": {"path": "media/sun.png", "kind": "image", "filename": "sun.png"},
         "delay_ms": 50,
         "usage": {"input": 12, "output": 4}},
        {"match": "fail", "reply": "Partial", "error": "upstream said no"}
      ],
      "fallback": {"reply": "I only know a few phrases."}
    }

The file is UTF-8 JSON; both top-level keys are optional (``rules`` defaults to []) and
no other key is allowed. A ``null`` value counts as absent.

Choosing a rule: rules are tried in order against the user's message text (the request's
last message), the first match wins. ``match`` compares the whole text exactly; ``regex``
matches anywhere (``re.search``; anchor it with ``^…$`` for the whole text). Each rule has
exactly one of the two. No rule matches: ``fallback`` (same keys, no ``match``/``regex``);
no fallback either: the reply of the ``echo`` provider.

Keys of a rule or of ``fallback``; all optional, no others allowed:

- ``reply`` (string, default ""): the answer. In a ``regex`` rule ``$1`` or ``\\1`` is the
  first group (``$0`` the whole match; a group that did not take part is empty); a
  reference to a group the regex does not have is a start-up error.
- ``reasoning`` (string): reasoning text, streamed before anything else.
- ``tool_call`` (object): ``name`` (string, required), ``args`` (object, default {}),
  ``result`` (string, default ""). The call gets the id ``call_<n>``, numbered from 1
  per provider in the order replies reach their call.
- ``attachment`` (object): ``path`` (string, required; relative to the data directory or
  absolute; the file must exist at start-up), ``kind`` (``image``, ``record``, ``file`` or
  ``video``, required), ``filename`` (string, default: the path's last component).
- ``delay_ms`` (integer ≥ 0, default 0): slept before each reasoning or reply delta.
- ``error`` (string): after everything else, the reply fails with this reason (the user
  sees ``LLM 响应错误: <reason>``), so streamed text stays and the error follows.
- ``usage`` (object): ``input`` and ``output`` (integers ≥ 0) reported as the token
  usage; default: the words of all request messages and the words of the reply.

A reply's events, in order: reasoning deltas, the tool call and its result, reply deltas
(one per word, each with the whitespace before it), the attachment, then the error or the
usage.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from astrlite.files import MEDIA_KINDS
from astrlite.providers.base import (
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
from astrlite.providers.echo import (
    count_words,
    echo_events,
    request_words,
    split_deltas,
    user_message,
)

TOOL_CALL_ID_PREFIX = "call_"
MS_PER_SECOND = 1000

_REPLY_KEYS = frozenset(
    {"reply", "reasoning", "tool_call", "attachment", "delay_ms", "error", "usage"}
)
_RULE_KEYS = _REPLY_KEYS | {"match", "regex"}
_TOP_KEYS = frozenset({"rules", "fallback"})
# "$1" or "\1" in a regex rule's reply.
_GROUP_REF = re.compile(r"\$(\d+)|\\(\d+)")


@dataclass(frozen=True, slots=True)
class ScriptedToolCall:
    name: str
    args: Mapping[str, Any]
    result: str


@dataclass(frozen=True, slots=True)
class ScriptedAttachment:
    path: str  # as written: relative to the data directory, or absolute
    kind: str
    filename: str


@dataclass(frozen=True, slots=True)
class ScriptedUsage:
    input: int
    output: int


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    reply: str = ""
    reasoning: str = ""
    tool_call: ScriptedToolCall | None = None
    attachment: ScriptedAttachment | None = None
    delay_ms: int = 0
    error: str | None = None
    usage: ScriptedUsage | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    where: str  # "rules[2]", for error messages
    match: str | None
    regex: re.Pattern[str] | None
    reply: ScriptedReply


@dataclass(frozen=True, slots=True)
class Rules:
    source: str  # the file, for error messages
    rules: tuple[Rule, ...]
    fallback: ScriptedReply | None


class _Invalid(Exception):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


def load_rules(path: str | Path) -> Rules:
    """Read and check a rules file; ValueError names the file, the place and the problem."""
    source = str(path)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{source}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{source}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        position = f"line {error.lineno} column {error.colno}"
        raise ValueError(f"{source}: invalid JSON at {position}: {error.msg}") from None
    return parse_rules(raw, source)


def parse_rules(raw: object, source: str) -> Rules:
    """Check parsed JSON against the format above; ValueError as in ``load_rules``."""
    try:
        top = _object(raw, "top level", _TOP_KEYS)
        rules_raw = top.get("rules", [])
        if not isinstance(rules_raw, list):
            raise _Invalid("rules", "expected a list")
        rules = tuple(_rule(item, f"rules[{index}]") for index, item in enumerate(rules_raw))
        fallback = None
        if "fallback" in top:
            fallback = _reply(_object(top["fallback"], "fallback", _REPLY_KEYS), "fallback")
    except _Invalid as error:
        raise ValueError(f"{source}: {error}") from None
    return Rules(source, rules, fallback)


class ScriptedProvider:
    def __init__(self, provider_id: str, rules: Rules, data_dir: str | Path) -> None:
        """Raise ValueError when an attachment file does not exist."""
        self.id = provider_id
        self._rules = rules
        self._data_dir = Path(data_dir).absolute()
        self._call_numbers = itertools.count(1)
        labelled = [(rule.where, rule.reply) for rule in rules.rules]
        if rules.fallback is not None:
            labelled.append(("fallback", rules.fallback))
        for where, reply in labelled:
            if reply.attachment is not None and not self._path(reply.attachment).is_file():
                path = reply.attachment.path
                raise ValueError(f"{rules.source}: {where}.attachment.path: file not found: {path}")

    @classmethod
    def from_file(
        cls, provider_id: str, rules_file: str | Path, data_dir: str | Path
    ) -> ScriptedProvider:
        """The provider of a config entry: ``rules_file`` relative to ``data_dir``."""
        return cls(provider_id, load_rules(Path(data_dir) / rules_file), data_dir)

    async def reply(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        message = user_message(request)
        chosen = self._choose("" if message is None else message.text)
        if chosen is None:
            for event in echo_events(request):
                yield event
            return
        script, text = chosen
        for delta in split_deltas(script.reasoning):
            await _pause(script.delay_ms)
            yield ReasoningDelta(delta)
        if script.tool_call is not None:
            call_id = f"{TOOL_CALL_ID_PREFIX}{next(self._call_numbers)}"
            yield ToolCall(call_id, script.tool_call.name, dict(script.tool_call.args))
            yield ToolResult(call_id, script.tool_call.result)
        for delta in split_deltas(text):
            await _pause(script.delay_ms)
            yield TextDelta(delta)
        if script.attachment is not None:
            attachment = script.attachment
            yield MediaReply(attachment.kind, str(self._path(attachment)), attachment.filename)
        if script.error is not None:
            raise ProviderError(script.error)
        if script.usage is None:
            yield Usage(request_words(request), 0, count_words(text))
        else:
            yield Usage(script.usage.input, 0, script.usage.output)

    def _choose(self, text: str) -> tuple[ScriptedReply, str] | None:
        """The first matching rule's reply and its text with groups filled in."""
        for rule in self._rules.rules:
            if rule.match is not None and rule.match == text:
                return rule.reply, rule.reply.reply
            if rule.regex is not None and (found := rule.regex.search(text)) is not None:
                return rule.reply, _fill_groups(rule.reply.reply, found)
        if self._rules.fallback is not None:
            return self._rules.fallback, self._rules.fallback.reply
        return None

    def _path(self, attachment: ScriptedAttachment) -> Path:
        return self._data_dir / attachment.path


async def _pause(delay_ms: int) -> None:
    if delay_ms:
        await anyio.sleep(delay_ms / MS_PER_SECOND)


def _fill_groups(template: str, found: re.Match[str]) -> str:
    def group(ref: re.Match[str]) -> str:
        return found.group(int(ref.group(1) or ref.group(2))) or ""

    return _GROUP_REF.sub(group, template)


def _rule(raw: object, where: str) -> Rule:
    fields = _object(raw, where, _RULE_KEYS)
    if ("match" in fields) == ("regex" in fields):
        raise _Invalid(where, 'needs exactly one of "match" and "regex"')
    reply = _reply(fields, where)
    if "match" in fields:
        return Rule(where, _string(fields, "match", where), None, reply)
    pattern = _string(fields, "regex", where)
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise _Invalid(f"{where}.regex", f"invalid regular expression: {error}") from None
    for ref in _GROUP_REF.finditer(reply.reply):
        number = int(ref.group(1) or ref.group(2))
        if number > regex.groups:
            problem = f"{ref.group(0)} refers to a group the regex does not have"
            raise _Invalid(f"{where}.reply", problem)
    return Rule(where, None, regex, reply)


def _reply(fields: Mapping[str, Any], where: str) -> ScriptedReply:
    tool_call = None
    if "tool_call" in fields:
        tool_call = _tool_call(fields["tool_call"], f"{where}.tool_call")
    attachment = None
    if "attachment" in fields:
        attachment = _attachment(fields["attachment"], f"{where}.attachment")
    usage = None
    if "usage" in fields:
        usage_where = f"{where}.usage"
        usage_fields = _object(fields["usage"], usage_where, frozenset({"input", "output"}))
        usage = ScriptedUsage(
            _count(usage_fields, "input", usage_where, required=True),
            _count(usage_fields, "output", usage_where, required=True),
        )
    return ScriptedReply(
        reply=_optional_string(fields, "reply", where) or "",
        reasoning=_optional_string(fields, "reasoning", where) or "",
        tool_call=tool_call,
        attachment=attachment,
        delay_ms=_count(fields, "delay_ms", where, required=False),
        error=_optional_string(fields, "error", where),
        usage=usage,
    )


def _tool_call(raw: object, where: str) -> ScriptedToolCall:
    fields = _object(raw, where, frozenset({"name", "args", "result"}))
    args = fields.get("args", {})
    if not isinstance(args, dict):
        raise _Invalid(f"{where}.args", "expected an object")
    return ScriptedToolCall(
        name=_string(fields, "name", where),
        args=args,
        result=_optional_string(fields, "result", where) or "",
    )


def _attachment(raw: object, where: str) -> ScriptedAttachment:
    fields = _object(raw, where, frozenset({"path", "kind", "filename"}))
    path = _string(fields, "path", where)
    if not path:
        raise _Invalid(f"{where}.path", "is empty")
    kind = _string(fields, "kind", where)
    if kind not in MEDIA_KINDS:
        raise _Invalid(f"{where}.kind", f"expected one of {', '.join(MEDIA_KINDS)}")
    filename = _optional_string(fields, "filename", where)
    return ScriptedAttachment(path, kind, Path(path).name if filename is None else filename)


def _object(raw: object, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _Invalid(where, "expected an object")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _Invalid(where, f"unknown key {unknown[0]!r}")
    return raw


def _string(fields: Mapping[str, Any], key: str, where: str) -> str:
    if key not in fields:
        raise _Invalid(f"{where}.{key}", "missing")
    value = fields[key]
    if not isinstance(value, str):
        raise _Invalid(f"{where}.{key}", "expected a string")
    return value


def _optional_string(fields: Mapping[str, Any], key: str, where: str) -> str | None:
    """A string, or None when the key is absent or null."""
    return None if fields.get(key) is None else _string(fields, key, where)


def _count(fields: Mapping[str, Any], key: str, where: str, *, required: bool) -> int:
    if key not in fields:
        if required:
            raise _Invalid(f"{where}.{key}", "missing")
        return 0
    value = fields[key]
    # bool is an int subclass; true is not a count.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Invalid(f"{where}.{key}", "expected an integer >= 0")
    return value
