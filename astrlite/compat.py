"""The AstrBot version astrlite speaks on the wire: 4.22 (the seed, the default) or 4.27.

Every wire difference between the two is a field of `Profile`; code reads the running
profile's fields and never compares version strings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Profile:
    name: str


SEED = Profile(name="4.22")
V4_27 = Profile(name="4.27")
PROFILES = {profile.name: profile for profile in (SEED, V4_27)}


def parse_profile(text: str) -> str:
    """The profile name for an option value, or a ValueError naming what is accepted."""
    name = text.strip()
    if name not in PROFILES:
        raise ValueError("expected one of " + ", ".join(PROFILES))
    return name
