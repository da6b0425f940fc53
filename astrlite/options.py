"""Server options: command line > ASTRLITE_* environment > defaults.

Every limit is a named default here, with the reason for its value, and every option
is overridable by exactly one flag and one environment variable.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from astrlite.compat import parse_profile
from astrlite.http.cors import parse_origins

MIB = 1024 * 1024

# nginx's large_client_header_buffers allows 4 x 8 KiB; 16 KiB for the whole head is
# generous for an API client and bounds what one slow client can make us hold.
DEFAULT_MAX_HEADER_BYTES = 16384
# A chat message of a megabyte is already far beyond any model's context window.
DEFAULT_MAX_JSON_BYTES = MIB
# AstrBot's own MAX_CONTENT_LENGTH (docs/compatibility.md M16).
DEFAULT_MAX_UPLOAD_BYTES = 128 * MIB
# The whole request head must arrive within this (slowloris guard).
DEFAULT_HEADER_TIMEOUT = 10.0
# How long an idle keep-alive connection is kept (nginx: 75 s; uvicorn: 5 s).
DEFAULT_KEEPALIVE_TIMEOUT = 5.0
# Whole-body deadline per 8 MiB: 60 s allows a client as slow as ~140 KB/s.
DEFAULT_BODY_TIMEOUT = 60.0
BODY_TIMEOUT_UNIT_BYTES = 8 * MIB
# Each write to a client; a reader slower than this is dropped (nginx send_timeout: 60 s).
DEFAULT_WRITE_TIMEOUT = 30.0
# Each connection costs one descriptor and a few KiB; the soft file limit is raised to fit.
DEFAULT_MAX_CONNECTIONS = 4096
# The WebSocket keep-alive ping when --sse-heartbeat is not given (W3); SSE heartbeats
# default to the profile's (Profile.sse_heartbeat).
DEFAULT_SSE_HEARTBEAT = 10.0
# AstrBot's per-session input queue size (docs/compatibility.md M16).
DEFAULT_MAX_SESSION_QUEUE = 128
DEFAULT_SHUTDOWN_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 6185
    data_dir: str = "./astrlite-data"
    log_level: str = "info"
    access_log: bool = True
    http_errors: bool = False
    no_query_keys: bool = False
    api_key_file: str | None = None
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    write_timeout: float = DEFAULT_WRITE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    sse_heartbeat: float | None = None  # None: the profile's (Profile.sse_heartbeat)
    max_session_queue: int = DEFAULT_MAX_SESSION_QUEUE
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    compat: str = "4.22"
    no_page: bool = False
    log_format: str = "text"
    metrics: bool = False
    cors_origins: str = ""
    retention_days: float = 0.0
    max_attachment_bytes: int = 0


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
PORT_MAX = 65535
# Read from the environment but not options: known, so never reported as a typo.
OTHER_VARIABLES = ("ASTRLITE_API_KEY",)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

_HELP = {
    "host": "address to listen on (0.0.0.0 exposes the server to the network)",
    "port": "TCP port to listen on (0 picks a free one)",
    "data_dir": "directory holding the database, attachments and config files",
    "log_level": "one of debug, info, warning, error",
    "access_log": "1 to log one line per request to stderr, 0 to disable",
    "http_errors": "answer business errors with honest HTTP status codes instead of 200",
    "no_query_keys": "refuse API keys carried in the query string",
    "api_key_file": "file with extra API keys (all scopes), one per line, # comments",
    "max_header_bytes": "limit for the request line plus headers (431 beyond)",
    "max_json_bytes": "limit for a JSON request body (413 beyond)",
    "max_upload_bytes": "limit for an uploaded file (413 beyond)",
    "header_timeout": "seconds allowed for the request head to arrive",
    "keepalive_timeout": "seconds an idle keep-alive connection is kept",
    "body_timeout": "seconds allowed per 8 MiB of request body (408 beyond)",
    "write_timeout": "seconds allowed for each write to a client",
    "max_connections": "open connections at most (503 beyond)",
    "sse_heartbeat": "seconds of silence before an SSE heartbeat comment, 0 for none"
    " (default 10 under --compat 4.22, 1 under 4.27)",
    "max_session_queue": "turns that may wait on one chat session",
    "shutdown_grace": "seconds in-flight requests get to finish on shutdown",
    "compat": "the AstrBot version spoken on the wire: 4.22 (the seed) or 4.27",
    "no_page": "do not serve the built-in chat page at / (it answers 404 instead)",
    "log_format": "text (one line for people) or json (one object a line)",
    "metrics": "serve Prometheus metrics at GET /metrics (no key: keep it off the internet)",
    "cors_origins": "browser origins allowed to call the API: comma list or *; empty: off",
    "retention_days": "delete history rows and sessions idle longer than this many days "
    "(0: keep forever)",
    "max_attachment_bytes": "delete the oldest attachments beyond this total size in bytes "
    "(0: no cap)",
}


class OptionError(ValueError):
    """An option value that cannot be used; the message names the option."""


def env_name(name: str) -> str:
    return "ASTRLITE_" + name.upper()


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected 1 or 0")


def _parse_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError("expected a whole number, 0 or more") from None
    if value < 0:
        raise ValueError("expected a whole number, 0 or more")
    return value


def _parse_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number of seconds, 0 or more") from None
    if not 0 <= value < float("inf"):
        raise ValueError("expected a number of seconds, 0 or more")
    return value


def _parse_days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ValueError("expected a number of days, 0 or more (0 keeps everything)")
    return value


def _parse_port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= PORT_MAX:
        raise ValueError(f"expected a port number from 0 to {PORT_MAX} (0 picks a free one)")
    return value


def _parse_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return value

    return parse


def _parse_cors(text: str) -> str:
    parse_origins(text)  # CorsError (a ValueError) says what is wrong
    return text


_SPECIAL: dict[str, Callable[[str], Any]] = {
    "port": _parse_port,
    "log_level": _parse_choice(LOG_LEVELS),
    "log_format": _parse_choice(LOG_FORMATS),
    "compat": parse_profile,
    "cors_origins": _parse_cors,
    "sse_heartbeat": _parse_seconds,  # a float, though its default is None
    "retention_days": _parse_days,
}


def _converter(name: str, default: Any) -> Callable[[str], Any]:
    if name in _SPECIAL:
        return _SPECIAL[name]
    if isinstance(default, bool):
        return _parse_bool
    if isinstance(default, int):
        return _parse_count
    if isinstance(default, float):
        return _parse_seconds
    return str


def is_switch(name: str) -> bool:
    """A flag without a value (--http-errors); --access-log takes 1 or 0."""
    default = Options.__dataclass_fields__[name].default
    return isinstance(default, bool) and name != "access_log"


def flags_with_values() -> frozenset[str]:
    return frozenset(
        "--" + f.name.replace("_", "-") for f in fields(Options) if not is_switch(f.name)
    )


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each ASTRLITE_* variable that no option reads (a typo, most often),
    naming the closest known one."""
    known = [env_name(f.name) for f in fields(Options)] + list(OTHER_VARIABLES)
    warnings = []
    for name in sorted(environ):
        if name.startswith("ASTRLITE_") and name not in known:
            import difflib  # only for a misspelt variable

            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"unknown environment variable {name} is ignored{hint}")
    return warnings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per option; every flag defaults to None so the env can fill in."""
    for field in fields(Options):
        flag = "--" + field.name.replace("_", "-")
        default = "" if field.default is None else f"; default {field.default}"
        help_text = f"{_HELP[field.name]} (env {env_name(field.name)}{default})"
        if is_switch(field.name):
            parser.add_argument(flag, action="store_const", const="1", default=None, help=help_text)
        else:
            parser.add_argument(flag, default=None, metavar="VALUE", help=help_text)


def resolve(namespace: argparse.Namespace, environ: Mapping[str, str]) -> Options:
    """Build Options from parsed flags, then the environment, then the defaults."""
    values: dict[str, Any] = {}
    for field in fields(Options):
        raw = getattr(namespace, field.name, None)
        source = "--" + field.name.replace("_", "-")
        if raw is None:
            raw = environ.get(env_name(field.name))
            source = env_name(field.name)
        if raw is None:
            continue
        try:
            values[field.name] = _converter(field.name, field.default)(raw)
        except ValueError as error:
            raise OptionError(f"{source}: {error} (got {raw!r})") from None
    return Options(**values)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's own, sized to the terminal without ``shutil``: argparse imports it (and
    bz2, lzma and zlib with it: ~0.5 MiB of memory) for every parser it builds."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_columns() - 2)


def terminal_columns() -> int:
    """As shutil.get_terminal_size: $COLUMNS, else the terminal's width, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def parser() -> argparse.ArgumentParser:
    """`astrlite serve`'s parser."""
    made = argparse.ArgumentParser(prog="astrlite serve", formatter_class=HelpFormatter)
    add_arguments(made)
    return made


def parse(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Options:
    return resolve(parser().parse_args(list(argv)), os.environ if environ is None else environ)
