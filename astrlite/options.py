"""Server options: command line > ASTRLITE_* environment > defaults.

Every limit is a named default here, with the reason for its value, and every option
is overridable by exactly one flag and one environment variable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from astrlite.compat import parse_profile

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
# Proxies commonly drop idle streams after 30-60 s; 10 s keeps well inside that.
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
    sse_heartbeat: float = DEFAULT_SSE_HEARTBEAT
    max_session_queue: int = DEFAULT_MAX_SESSION_QUEUE
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    compat: str = "4.22"
    no_page: bool = False


LOG_LEVELS = ("debug", "info", "warning", "error")
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
    "sse_heartbeat": "seconds of silence before an SSE heartbeat comment",
    "max_session_queue": "turns that may wait on one chat session",
    "shutdown_grace": "seconds in-flight requests get to finish on shutdown",
    "compat": "the AstrBot version spoken on the wire: 4.22 (the seed) or 4.27",
    "no_page": "do not serve the built-in chat page at / (it answers 404 instead)",
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


def _parse_positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < 0:
            raise ValueError("must not be negative")
        return value

    return parse


def _converter(name: str, default: Any) -> Callable[[str], Any]:
    if isinstance(default, bool):
        return _parse_bool
    if isinstance(default, int):
        return _parse_positive(int)
    if isinstance(default, float):
        return _parse_positive(float)
    if name == "log_level":
        return _parse_log_level
    if name == "compat":
        return parse_profile
    return str


def _parse_log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError("expected one of " + ", ".join(LOG_LEVELS))
    return level


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per option; every flag defaults to None so the env can fill in."""
    for field in fields(Options):
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{_HELP[field.name]} (env {env_name(field.name)}; default {field.default})"
        if isinstance(field.default, bool) and field.name != "access_log":
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


def parse(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="astrlite serve")
    add_arguments(parser)
    return resolve(parser.parse_args(list(argv)), os.environ if environ is None else environ)
