"""Command line: `astrlite [serve] [options]`, `astrlite keys ...`, `help`, `version`.

Options may come before or after the sub-command (`astrlite --data-dir X keys list`,
`astrlite keys list --data-dir X`). No traceback reaches the terminal: every refusal is
one line that names the option and what it accepts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from astrlite import __version__, options
from astrlite.operations import banner, logs
from astrlite.principal import VALID_SCOPES
from astrlite.runtime import StartupError, prepare_data_dir, start
from astrlite.store import keys
from astrlite.store.db import StoreError, administer
from astrlite.tuning import collect_less_often, freeze_start_up_objects, tune_malloc

COMMANDS = ("serve", "keys", "db", "help", "version")
USAGE = """usage: astrlite [serve] [options]      run the server (astrlite help serve)
       astrlite keys create|list|revoke|delete ...   manage API keys (astrlite help keys)
       astrlite db stats|vacuum       database counts and sizes, compaction (astrlite help db)
       astrlite version               print the version
       astrlite help [serve|keys|db]  this text, or a command's options"""
DEFAULT_DATA_DIR = "./astrlite-data"
EXIT_INTERRUPTED = 130
NO_KEYS = "no keys stored (keys from ASTRLITE_API_KEY or --api-key-file are never listed)"

log = logging.getLogger("astrlite")


def fail(message: str, code: int = 1) -> int:
    print(f"astrlite: {message}", file=sys.stderr)
    return code


def serve(argv: Sequence[str]) -> int:
    try:
        opts = options.parse(argv)
    except options.OptionError as error:
        return fail(str(error), 2)
    with logs.configured(opts.log_level, opts.log_format, access_log=opts.access_log):
        return _serve(opts)


def _serve(opts: options.Options) -> int:
    for warning in options.unknown_variables(os.environ):
        log.warning("%s", warning)
    try:
        runtime = start(opts)
    except StartupError as error:
        return fail(str(error))
    with runtime:
        tune_malloc()
        freeze_start_up_objects()
        collect_less_often()
        print("\n".join(banner.lines(runtime.services, runtime.data_dir, runtime.url)), flush=True)
        if not runtime.services.keys.has_static_keys:
            with runtime.db.writer_connection() as conn:
                if keys.count(conn) == 0:
                    every_scope = list(VALID_SCOPES)
                    created = keys.create(
                        conn, name="first key", scopes=every_scope, created_by="serve"
                    )
                    print(f"api_key: {created['api_key']}  (all scopes; shown once)", flush=True)
        anyio.run(lambda: runtime.server.serve(handle_signals=True))
    return 0


# -- keys -------------------------------------------------------------------------------


def _days(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None


def _keys_parser() -> argparse.ArgumentParser:
    data_dir_help = f"data directory (env ASTRLITE_DATA_DIR; default {DEFAULT_DATA_DIR})"
    parser = argparse.ArgumentParser(prog="astrlite keys", description="Manage API keys.")
    parser.add_argument("--data-dir", default=None, help=data_dir_help)
    # The same option after the sub-command; SUPPRESS keeps a value given before it.
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
    commands = parser.add_subparsers(dest="command", metavar="create|list|revoke|delete")
    create = commands.add_parser("create", parents=[shared], help="create a key and print it once")
    create.add_argument("--name", default=None)
    create.add_argument(
        "--scopes",
        default=None,
        help="comma-separated, from: "
        + ", ".join(VALID_SCOPES)
        + " (default: all but the two admin sub-scopes)",
    )
    create.add_argument("--expires-in-days", type=_days, default=None)
    create.add_argument("--json", action="store_true")
    listing = commands.add_parser("list", parents=[shared], help="list keys")
    listing.add_argument("--json", action="store_true")
    for name in ("revoke", "delete"):
        command = commands.add_parser(name, parents=[shared], help=f"{name} a key")
        command.add_argument("key_id")
    return parser


LIST_COLUMNS = (
    "key_id",
    "name",
    "key_prefix",
    "scopes",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
)


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [[_cell(row[c]) for c in LIST_COLUMNS] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(LIST_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(LIST_COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return ",".join(value) if isinstance(value, list) else str(value)


def keys_command(argv: Sequence[str]) -> int:
    parser = _keys_parser()
    args = parser.parse_args(list(argv))
    if args.command is None:
        parser.print_help()
        return 0
    for warning in options.unknown_variables(os.environ):
        print(f"astrlite: warning: {warning}", file=sys.stderr)
    data_dir = Path(args.data_dir or os.environ.get("ASTRLITE_DATA_DIR") or DEFAULT_DATA_DIR)
    try:
        output = administer(prepare_data_dir(data_dir), lambda conn: _run_keys(conn, args))
    except (StartupError, StoreError, keys.KeyError_) as error:
        return fail(str(error))
    print(output)
    return 0


def _run_keys(conn: Any, args: argparse.Namespace) -> str:
    if args.command == "create":
        scopes = keys.parse_scopes(args.scopes)
        created = keys.create(
            conn, name=args.name, scopes=scopes, expires_in_days=args.expires_in_days
        )
        if args.json:
            return json.dumps(created, ensure_ascii=False)
        return f"key_id: {created['key_id']}\napi_key: {created['api_key']}"
    if args.command == "list":
        rows = keys.list_keys(conn)
        if args.json:
            return json.dumps(rows, ensure_ascii=False)
        return _table(rows) if rows else NO_KEYS
    if args.command == "revoke":
        keys.revoke(conn, args.key_id)
        return f"revoked {args.key_id}"
    keys.delete(conn, args.key_id)
    return f"deleted {args.key_id}"


# -- dispatch ---------------------------------------------------------------------------


def split_command(args: list[str]) -> tuple[str | None, list[str], list[str]]:
    """(the sub-command word, the options before it, what follows it). A word that is
    no command comes back as the first item of the third list, with None."""
    takes_value = options.flags_with_values()
    index = 0
    while index < len(args):
        token = args[index]
        if token in COMMANDS:
            return token, args[:index], args[index + 1 :]
        if token == "--":
            break
        if not token.startswith("-"):
            return None, args[:index], args[index:]
        index += 2 if token in takes_value else 1
    return None, args, []


def help_command(topic: list[str]) -> int:
    if topic[:1] == ["serve"]:
        options.parser().print_help()
    elif topic[:1] == ["keys"]:
        _keys_parser().print_help()
    elif topic[:1] == ["db"]:
        from astrlite.store import dbcli

        dbcli.parser().print_help()
    else:
        print(USAGE)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:  # outside the server's own handling (start-up, keys)
        print("astrlite: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _dispatch(args: list[str]) -> int:
    if args[:1] in (["--version"], ["-V"]):
        print(f"astrlite {__version__}")
        return 0
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    command, before, rest = split_command(args)
    if command is None and rest:
        import difflib  # only for a misspelt command

        close = difflib.get_close_matches(rest[0], COMMANDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return fail(f"unknown command {rest[0]!r}{hint}; commands: {', '.join(COMMANDS)}", 2)
    if command == "version":
        print(f"astrlite {__version__}")
        return 0
    if command == "help":
        return help_command(rest)
    if command == "keys":
        return keys_command(before + rest)
    if command == "db":
        from astrlite.store import dbcli  # not loaded by `serve`

        return dbcli.main(before + rest)
    return serve(before + rest)
