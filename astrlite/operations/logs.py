"""Server logging on stderr: `--log-format text` (for people) or `json` (one object a
line, for collectors). A log call may attach structured fields with
`extra={"fields": ...}`, a dict or an object whose `as_dict()` gives one (built only
when a JSON line is written); the JSON format merges them into the object and the text
format shows only the message, which already says the same in words."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        as_dict = getattr(fields, "as_dict", None)  # computed only here (http.access)
        if as_dict is not None:
            fields = as_dict()
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT`, with the local time formatted once a second instead of on every
    line (an access line per request): the same text as `logging.Formatter`'s."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second: tuple[int, str] = (-1, "")  # one attribute: threads log too

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if second != int(record.created):
            text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (int(record.created), text)
        return f"{text},{int(record.msecs):03d}"  # logging's default_msec_format


def _iso(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


@contextmanager
def configured(
    level: str, log_format: str, *, access_log: bool, stream: TextIO | None = None
) -> Iterator[None]:
    """One stderr handler in the chosen format on the root logger, for the life of the
    block; afterwards the logging set-up is as before (an in-process run leaves nothing)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    access = logging.getLogger("astrlite.access")
    previous = (root.level, access.disabled)
    recorded = _record_context()
    root.addHandler(handler)
    root.setLevel(level.upper())
    access.disabled = not access_log
    # Neither format shows a record's thread or process: not looked up per record.
    _set_record_context((False, False, False))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous[0])
        access.disabled = previous[1]
        _set_record_context(recorded)


def _record_context() -> tuple[bool, bool, bool]:
    return logging.logThreads, logging.logProcesses, logging.logMultiprocessing


def _set_record_context(flags: tuple[bool, bool, bool]) -> None:
    logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags
