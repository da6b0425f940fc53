"""What the server counts, and its rendering in the Prometheus text format (0.0.4).

Plain counters updated on the event loop (no locks: every writer runs there); values
that already live elsewhere (open connections, queued turns, the database size) are read
when a scrape asks, through callables registered at start-up. Label values are bounded:
a route label is a path from the route table or `other`, never a client's raw path.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
# Seconds. Plain requests end in milliseconds; streamed chat replies take up to minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OTHER_ROUTE = "other"

Labels = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0


class Metrics:
    """One server's numbers. Chat, providers, platforms and the connection layer add to
    them; `render()` writes the exposition text."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}  # (route, method, status)
        self._latency: dict[str, _Histogram] = {}
        self.open_streams = 0
        self.turns_started = 0
        self.turns_finished = 0
        self.turns_failed = 0
        self.upstream_errors: dict[str, int] = {}  # provider id
        self.platform_errors: dict[str, int] = {}  # platform id
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self._latency.get(route)
        if histogram is None:
            histogram = self._latency[route] = _Histogram()
        histogram.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        histogram.total += seconds

    def upstream_error(self, provider_id: str) -> None:
        self.upstream_errors[provider_id] = self.upstream_errors.get(provider_id, 0) + 1

    def platform_error(self, platform_id: str) -> None:
        self.platform_errors[platform_id] = self.platform_errors.get(platform_id, 0) + 1

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A value read at scrape time (`astrlite_` is prefixed to `name`)."""
        self._gauges[name] = (help_text, read)

    def render(self) -> bytes:
        out: list[str] = []
        _family(out, "http_requests_total", "counter", "Requests answered.", self._request_rows())
        _family(
            out,
            "http_request_duration_seconds",
            "histogram",
            "Time from the request head to the response's last byte.",
            self._latency_rows(),
        )
        _family(
            out,
            "open_streams",
            "gauge",
            "Streamed responses being sent.",
            [("", (), self.open_streams)],
        )
        for name, help_text, value in (
            ("turns_started_total", "Chat turns started.", self.turns_started),
            ("turns_finished_total", "Chat turns that ended with a reply.", self.turns_finished),
            ("turns_failed_total", "Chat turns that ended in an error.", self.turns_failed),
        ):
            _family(out, name, "counter", help_text, [("", (), value)])
        _family(
            out,
            "upstream_errors_total",
            "counter",
            "Provider failures (an error answer, a dead or unreachable server).",
            [("", (("provider", p),), n) for p, n in sorted(self.upstream_errors.items())],
        )
        _family(
            out,
            "platform_errors_total",
            "counter",
            "Chat platform deliveries that failed.",
            [("", (("platform", p),), n) for p, n in sorted(self.platform_errors.items())],
        )
        for name, (help_text, read) in sorted(self._gauges.items()):
            _family(out, name, "gauge", help_text, [("", (), read())])
        return "".join(out).encode()

    def _request_rows(self) -> list[tuple[str, Labels, float]]:
        return [
            ("", (("route", r), ("method", m), ("status", s)), n)
            for (r, m, s), n in sorted(self.requests.items())
        ]

    def _latency_rows(self) -> list[tuple[str, Labels, float]]:
        rows: list[tuple[str, Labels, float]] = []
        for route, histogram in sorted(self._latency.items()):
            running = 0
            for bound, count in zip((*LATENCY_BUCKETS, math.inf), histogram.counts, strict=True):
                running += count
                le = "+Inf" if bound == math.inf else repr(bound)
                rows.append(("_bucket", (("route", route), ("le", le)), running))
            rows.append(("_sum", (("route", route),), histogram.total))
            rows.append(("_count", (("route", route),), running))
        return rows


def _family(
    out: list[str],
    name: str,
    kind: str,
    help_text: str,
    rows: Iterable[tuple[str, Labels, float]],
) -> None:
    full = "astrlite_" + name
    out.append(f"# HELP {full} {help_text}\n# TYPE {full} {kind}\n")
    for suffix, labels, value in rows:
        out.append(f"{full}{suffix}{_labels(labels)} {_number(value)}\n")


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
