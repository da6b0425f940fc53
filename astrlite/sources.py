"""Where time and ids come from: the system, or, for snapshot tests, a fixed clock and
seeded ids so that two runs of the same test produce byte-identical transcripts.

The source is a context variable: a server started with a deterministic source (see
astrlite.testing) passes it to every task and worker thread it starts, so two servers
in one process each keep their own.
"""

from __future__ import annotations

import random
import time
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone

# The fixed clock of deterministic mode: 2026-01-01T00:00:00+00:00.
FIXED_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Source:
    """The real clock and random ids."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def timestamp(self) -> float:
        return time.time()

    def new_uuid(self) -> str:
        return str(uuid.uuid4())

    def new_hex(self) -> str:
        return uuid.uuid4().hex


class DeterministicSource(Source):
    """A clock that never moves and ids drawn from a seeded generator."""

    def __init__(self, seed: int = 0, start: datetime = FIXED_START) -> None:
        self._random = random.Random(seed)
        self._start = start

    def now(self) -> datetime:
        return self._start

    def timestamp(self) -> float:
        return self._start.timestamp()

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def new_hex(self) -> str:
        return uuid.UUID(int=self._random.getrandbits(128), version=4).hex


SYSTEM = Source()
current: ContextVar[Source] = ContextVar("astrlite_source", default=SYSTEM)


def now() -> datetime:
    return current.get().now()


def timestamp() -> float:
    return current.get().timestamp()


def new_uuid() -> str:
    return current.get().new_uuid()


def new_hex() -> str:
    return current.get().new_hex()
