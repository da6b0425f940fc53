"""Issues 2 and 17: time from `python dist/astrlite.pyz` to its first authenticated
answer (GET /api/v1/im/bots with the key), and idle RSS after it, beside a bare uvicorn
--http h11 app started the same way, RUNS interleaved starts each, medians. astrlite is
configured as a user runs it: an ``openai`` provider in config.json (its upstream need not
answer: nothing is sent before the first chat turn).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.common import median, rss_kib, server

RUNS = 10
CONFIG = {
    "provider": "up",
    "providers": [
        {
            "id": "up",
            "type": "openai",
            "base_url": "https://api.example.invalid/v1",
            "api_key": "sk-bench",
            "model": "bench",
        }
    ],
    "streaming": True,
}


def once(kind: str, data_dir: str, times: list[float], rss: list[float]) -> None:
    with server(kind, data_dir) as started:
        times.append(started.seconds_to_first_answer)
        rss.append(rss_kib(started.process.pid) / 1024)


def main() -> None:
    figures: dict[str, tuple[list[float], list[float]]] = {
        "astrlite": ([], []),
        "uvicorn": ([], []),
    }
    with tempfile.TemporaryDirectory() as data_dir:
        Path(data_dir, "config.json").write_text(json.dumps(CONFIG))
        for _ in range(RUNS):
            for kind, (times, rss) in figures.items():
                once(kind, data_dir, times, rss)
    ours = [median(values) for values in figures["astrlite"]]
    base = [median(values) for values in figures["uvicorn"]]
    print(
        f"start-up to first authenticated answer (openai provider configured): astrlite "
        f"{ours[0] * 1000:.0f} ms, uvicorn {base[0] * 1000:.0f} ms, ratio "
        f"{ours[0] / base[0]:.2f}x (goal <= 1.0x)"
    )
    print(
        f"idle RSS after it: astrlite {ours[1]:.1f} MiB, uvicorn {base[1]:.1f} MiB, "
        f"ratio {ours[1] / base[1]:.2f}x (goal <= 1.0x)"
    )
