"""`python -m bench [name ...] [options]`: run the named benchmarks, or all of them.
Other arguments (`--size 64M`) are left in sys.argv for the benchmarks to read."""

from __future__ import annotations

import importlib
import sys

from bench.common import ensure_current_pyz

BENCHMARKS = [
    "startup",
    "keys",
    "files",
    "fixture",
    "chat",
    "ws",
    "openai_relay",
    "edge",
    "observe",
    "scale",
    "turn_cost",
]


def main(args: list[str]) -> int:
    names = [arg for arg in args if arg in BENCHMARKS]
    ensure_current_pyz()
    for name in names or BENCHMARKS:
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
