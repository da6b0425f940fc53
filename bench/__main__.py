"""`python -m bench [name ...]`: run the named benchmarks, or all of them."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ["startup", "keys", "files", "fixture", "chat", "openai_relay"]


def main(names: list[str]) -> int:
    for name in names or BENCHMARKS:
        if name.startswith("-"):
            continue
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
