"""Where time and ids come from: the system, or, for snapshot tests, a fixed clock and
seeded ids so that two runs of the same test produce byte-identical transcripts.

The source is a context variable: a server started with a deterministic source (see
astrlite.testing) passes it to every task and worker thread it starts, so two servers
in one process each keep their own.
"""

from __future__ import annotations

import os
import random
import time
from contextvars import ContextVar
from datetime import datetime, timezone

# The fixed clock of deterministic mode: 2026-01-01T00:00:00+00:00.
FIXED_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
ISO_SECOND_LENGTH = len("2026-01-01T00:00:00")
UTC_SUFFIX = "+00:00"


class Source:
    """The real clock and random ids."""

    def __init__(self) -> None:
        # The last second `now_iso` met, and its text: one value, as threads share it.
        self._second: tuple[int, str] = (-1, "")

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def now_iso(self) -> str:
        """``now().isoformat()``, with the date and time up to the second spelt once a
        second: a turn stores two times, and isoformat is most of what each costs."""
        second, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
        known, text = self._second
        if second != known:
            text = datetime.fromtimestamp(second, timezone.utc).isoformat()[:ISO_SECOND_LENGTH]
            self._second = (second, text)
        microseconds = nanoseconds // 1000
        if not microseconds:  # isoformat leaves out a zero fraction
            return text + UTC_SUFFIX
        return f"{text}.{microseconds:06d}{UTC_SUFFIX}"

    def timestamp(self) -> float:
        return time.time()

    def new_uuid(self) -> str:
        """``dashed(v4_hex(...))`` of 16 random bytes, spelt from their hex (a turn makes
        three: through an int it cost twice as much)."""
        h = os.urandom(16).hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:]}"

    def new_hex(self) -> str:
        return v4_hex(int.from_bytes(os.urandom(16), "big"))


class DeterministicSource(Source):
    """A clock that never moves and ids drawn from a seeded generator."""

    def __init__(self, seed: int = 0, start: datetime = FIXED_START) -> None:
        super().__init__()
        self._random = random.Random(seed)
        self._start = start

    def now(self) -> datetime:
        return self._start

    def now_iso(self) -> str:
        return self._start.isoformat()

    def timestamp(self) -> float:
        return self._start.timestamp()

    def new_uuid(self) -> str:
        return dashed(v4_hex(self._random.getrandbits(128)))

    def new_hex(self) -> str:
        return v4_hex(self._random.getrandbits(128))


# Not the uuid module: it imports `platform`, ~10 ms of every start-up.
def v4_hex(bits: int) -> str:
    """`uuid.UUID(int=bits, version=4).hex`: the variant and version bits set."""
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)
    bits = (bits & ~(0xF000 << 64)) | (4 << 76)
    return f"{bits:032x}"


# A v4 uuid's variant digit for each random hex digit: its top two bits set to 10.
_VARIANT_DIGIT = {f"{digit:x}": f"{digit & 0x3 | 0x8:x}" for digit in range(16)}


def dashed(hex_id: str) -> str:
    """`str()` of that UUID."""
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


SYSTEM = Source()
current: ContextVar[Source] = ContextVar("astrlite_source", default=SYSTEM)


def now() -> datetime:
    return current.get().now()


def now_iso() -> str:
    return current.get().now_iso()


def timestamp() -> float:
    return current.get().timestamp()


def new_uuid() -> str:
    return current.get().new_uuid()


def new_hex() -> str:
    return current.get().new_hex()
