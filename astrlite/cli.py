"""Command line: `astrlite [serve] [options]`, `astrlite keys ...`, `astrlite --version`."""

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
from astrlite.principal import VALID_SCOPES
from astrlite.runtime import StartupError, prepare_data_dir, start
from astrlite.store import keys
from astrlite.store.db import StoreError, administer
from astrlite.tuning import tune_malloc

USAGE = """usage: astrlite [serve] [options]      run the server (astrlite serve --help)
       astrlite keys create|list|revoke|delete ...   manage API keys (astrlite keys --help)
       astrlite --version             print the version"""


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def fail(message: str, code: int = 1) -> int:
    print(f"astrlite: {message}", file=sys.stderr)
    return code


def serve(argv: Sequence[str]) -> int:
    try:
        opts = options.parse(argv)
    except options.OptionError as error:
        return fail(str(error), 2)
    configure_logging(opts.log_level)
    logging.getLogger("astrlite.access").disabled = not opts.access_log
    try:
        runtime = start(opts)
    except StartupError as error:
        return fail(str(error))
    with runtime:
        tune_malloc()
        print(f"astrlite {__version__} listening on {runtime.url}", flush=True)
        print(f"data directory: {runtime.data_dir.resolve()}", flush=True)
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


def _keys_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="astrlite keys", description="Manage API keys.")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data directory (env ASTRLITE_DATA_DIR; default ./astrlite-data)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", default=None)
    create.add_argument(
        "--scopes",
        default=None,
        help="comma-separated, from: "
        + ", ".join(VALID_SCOPES)
        + " (default: all but the two admin sub-scopes)",
    )
    create.add_argument("--expires-in-days", type=int, default=None)
    create.add_argument("--json", action="store_true")
    listing = commands.add_parser("list", help="list keys")
    listing.add_argument("--json", action="store_true")
    for name in ("revoke", "delete"):
        commands.add_parser(name, help=f"{name} a key").add_argument("key_id")
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
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(LIST_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(LIST_COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return ",".join(value) if isinstance(value, list) else str(value)


def keys_command(argv: Sequence[str]) -> int:
    args = _keys_parser().parse_args(list(argv))
    data_dir = Path(args.data_dir or os.environ.get("ASTRLITE_DATA_DIR") or "./astrlite-data")
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
        return json.dumps(rows, ensure_ascii=False) if args.json else _table(rows)
    if args.command == "revoke":
        keys.revoke(conn, args.key_id)
        return f"revoked {args.key_id}"
    keys.delete(conn, args.key_id)
    return f"deleted {args.key_id}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        print(f"astrlite {__version__}")
        return 0
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if args[:1] == ["keys"]:
        return keys_command(args[1:])
    if args[:1] == ["serve"]:
        args = args[1:]
    return serve(args)
