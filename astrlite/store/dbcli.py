"""``astrlite db stats|vacuum``: counts and sizes of a data directory's database, and
compaction (docs/scale.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from astrlite.store import admin
from astrlite.store.errors import StoreError

DEFAULT_DATA_DIR = "./astrlite-data"
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def parser() -> argparse.ArgumentParser:
    data_dir_help = f"data directory (env ASTRLITE_DATA_DIR; default {DEFAULT_DATA_DIR})"
    top = argparse.ArgumentParser(
        prog="astrlite db", description="Inspect or compact the database."
    )
    top.add_argument("--data-dir", default=None, help=data_dir_help)
    # The same option after the sub-command; SUPPRESS keeps a value given before it.
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
    commands = top.add_subparsers(dest="command", metavar="stats|vacuum")
    stats = commands.add_parser(
        "stats", parents=[shared], help="print row counts and sizes (safe while serving)"
    )
    stats.add_argument("--json", action="store_true")
    commands.add_parser(
        "vacuum",
        parents=[shared],
        help="compact the database file (refused while a server runs on it)",
    )
    return top


def size(count: int) -> str:
    value = float(count)
    for unit in UNITS:
        if value < 1024 or unit == UNITS[-1]:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def main(argv: Sequence[str]) -> int:
    top = parser()
    args = top.parse_args(list(argv))
    if args.command is None:
        top.print_help()
        return 0
    data_dir = Path(args.data_dir or os.environ.get("ASTRLITE_DATA_DIR") or DEFAULT_DATA_DIR)
    try:
        if args.command == "stats":
            found = admin.stats(data_dir)
            print(json.dumps(found.as_dict()) if args.json else _stats_text(found))
        else:
            done = admin.vacuum(data_dir)
            print(f"vacuumed {data_dir}: {size(done.before_bytes)} -> {size(done.after_bytes)}")
    except StoreError as error:
        print(f"astrlite: {error}", file=sys.stderr)
        return 1
    return 0


def _stats_text(found: admin.Stats) -> str:
    lines = [
        ("sessions", f"{found.sessions:,}"),
        ("history rows", f"{found.history_rows:,}"),
        ("attachments", f"{found.attachments:,} ({size(found.attachment_bytes)})"),
        ("api keys", f"{found.api_keys:,}"),
        ("database file", size(found.database_bytes)),
        ("write-ahead log", size(found.wal_bytes)),
        ("free (vacuum)", size(found.free_bytes)),
    ]
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in lines)
