"""Ids made without the uuid module are the uuid module's, bit for bit."""

from __future__ import annotations

import random
import uuid

import pytest

from astrlite import sources
from astrlite.sources import DeterministicSource, Source, dashed, v4_hex


def test_the_same_as_uuid_for_any_bits() -> None:
    draw = random.Random(7)
    for bits in (0, (1 << 128) - 1, *(draw.getrandbits(128) for _ in range(500))):
        made = uuid.UUID(int=bits, version=4)
        assert v4_hex(bits) == made.hex and dashed(v4_hex(bits)) == str(made)


def test_seeded_ids_are_unchanged() -> None:
    ours, draw = DeterministicSource(3), random.Random(3)
    assert ours.new_uuid() == str(uuid.UUID(int=draw.getrandbits(128), version=4))
    assert ours.new_hex() == uuid.UUID(int=draw.getrandbits(128), version=4).hex


def test_system_ids_are_version_4_and_differ() -> None:
    ids = {Source().new_uuid() for _ in range(100)}
    assert len(ids) == 100
    assert all(
        uuid.UUID(made).version == 4 and uuid.UUID(made).variant == uuid.RFC_4122 for made in ids
    )
    assert uuid.UUID(hex=Source().new_hex()).version == 4


def test_system_ids_are_the_uuid_modules_of_their_random_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draw = random.Random(11)
    for raw in (bytes(16), b"\xff" * 16, *(draw.randbytes(16) for _ in range(500))):
        monkeypatch.setattr(sources.os, "urandom", lambda size, raw=raw: raw[:size])
        assert Source().new_uuid() == str(uuid.UUID(bytes=raw, version=4))
        assert Source().new_hex() == uuid.UUID(bytes=raw, version=4).hex
