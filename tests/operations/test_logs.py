"""--log-format json and the access line."""

from __future__ import annotations

import io
import json
import logging

from astrlite.http import access
from astrlite.operations import logs

ENTRY = access.Access(
    client="127.0.0.1:5000",
    key_id="k1",
    method="GET",
    target="/api/v1/im/bots?api_key=REDACTED",
    status=200,
    sent=52,
    seconds=0.0123,
    user_agent='curl/8 "quoted"',
)


def test_the_access_line_in_words() -> None:
    assert access.line(ENTRY) == (
        '127.0.0.1:5000 k1 "GET /api/v1/im/bots?api_key=REDACTED" 200 52 12.3ms "curl/8 \'quoted\'"'
    )
    anonymous = access.Access("-", None, "GET", "/x", 404, 0, 0.0, None)
    assert access.line(anonymous) == '- - "GET /x" 404 0 0.0ms "-"'
    assert access.user_agent_of(b"x" * 500) == "x" * access.MAX_USER_AGENT


def test_json_lines_carry_fields_and_exceptions() -> None:
    out = io.StringIO()
    with logs.configured("info", "json", access_log=True, stream=out):
        access.log(ENTRY)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("astrlite").exception("handler failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["logger"] == "astrlite.access" and first["level"] == "info"
    assert (first["client"], first["key_id"], first["status"], first["bytes"]) == (
        "127.0.0.1:5000",
        "k1",
        200,
        52,
    )
    assert first["duration_ms"] == 12.3 and first["message"] == access.line(ENTRY)
    assert second["message"] == "handler failed" and "RuntimeError: boom" in second["exception"]


def test_the_set_up_is_undone_afterwards() -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    context = (logging.logThreads, logging.logProcesses, logging.logMultiprocessing)
    with logs.configured("debug", "text", access_log=False, stream=io.StringIO()):
        assert logging.getLogger("astrlite.access").disabled
        assert not (logging.logThreads or logging.logProcesses or logging.logMultiprocessing)
    assert (list(root.handlers), root.level) == before
    assert (logging.logThreads, logging.logProcesses, logging.logMultiprocessing) == context
    assert not logging.getLogger("astrlite.access").disabled


def test_the_text_format_is_loggings_own() -> None:
    plain = logging.Formatter(logs.TEXT_FORMAT)
    ours = logs.TextFormatter()
    for created in (1_800_000_000.0, 1_800_000_000.999, 1_800_000_001.0416, 1_799_999_999.5):
        record = logging.LogRecord("astrlite.access", logging.INFO, "", 0, "%s", ("x",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == plain.format(record)


def test_an_access_line_in_text() -> None:
    out = io.StringIO()
    with logs.configured("info", "text", access_log=True, stream=out):
        access.log(ENTRY)
    assert out.getvalue().endswith(f" INFO astrlite.access: {access.line(ENTRY)}\n")
