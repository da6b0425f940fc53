"""`now_iso` spells a time exactly as `datetime.isoformat` does (docs/compatibility.md M7)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from astrlite import sources
from astrlite.sources import FIXED_START, DeterministicSource, Source

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def spelt_by_datetime(nanoseconds: int) -> str:
    return (EPOCH + timedelta(microseconds=nanoseconds // 1000)).isoformat()


def test_any_time_is_spelt_as_isoformat_spells_it(monkeypatch: pytest.MonkeyPatch) -> None:
    draw = random.Random(5)
    start = 1_796_572_078 * 10**9
    times = [
        start,  # a whole second: no fraction, as isoformat leaves it out
        start + 999,  # under a microsecond: no fraction either
        start + 1000,
        start + 999_999_999,
        start + 10**9,  # the next second, after the text of the last was kept
        *sorted(start + draw.randrange(5 * 10**9) for _ in range(300)),
        start - 86_400 * 10**9,  # back a day: the kept text is not reused
    ]
    source = Source()
    for nanoseconds in times:
        monkeypatch.setattr(sources.time, "time_ns", lambda n=nanoseconds: n)
        assert source.now_iso() == spelt_by_datetime(nanoseconds)


def test_the_real_clock_is_now() -> None:
    before = datetime.now(timezone.utc)
    spelt = Source().now_iso()
    after = datetime.now(timezone.utc)
    assert spelt.endswith("+00:00")
    assert before - timedelta(milliseconds=1) <= datetime.fromisoformat(spelt) <= after


def test_the_fixed_clock_is_its_start() -> None:
    assert DeterministicSource().now_iso() == FIXED_START.isoformat()
    assert DeterministicSource().now_iso() == DeterministicSource().now().isoformat()
