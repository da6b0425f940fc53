"""Issue 2: time from `python dist/astrlite.pyz` to its first answer, and idle RSS,
beside a bare uvicorn --http h11 app started the same way."""

from __future__ import annotations

import tempfile

from bench.common import median, rss_kib, server

RUNS = 10


def measure(kind: str) -> tuple[float, float]:
    times, rss = [], []
    with tempfile.TemporaryDirectory() as data_dir:
        for _ in range(RUNS):
            with server(kind, data_dir) as started:
                times.append(started.seconds_to_first_answer)
                rss.append(rss_kib(started.process.pid) / 1024)
    return median(times), median(rss)


def main() -> None:
    ours = measure("astrlite")
    base = measure("uvicorn")
    print(
        f"start-up to first answer: astrlite {ours[0] * 1000:.0f} ms, uvicorn "
        f"{base[0] * 1000:.0f} ms, ratio {ours[0] / base[0]:.2f}x (goal <= 1.0x)"
    )
    print(
        f"idle RSS: astrlite {ours[1]:.1f} MiB, uvicorn {base[1]:.1f} MiB, "
        f"ratio {ours[1] / base[1]:.2f}x (goal <= 1.0x)"
    )
