"""The AstrBot version astrlite speaks on the wire: 4.22 (the seed, the default) or 4.27.

Every wire difference between the two is a field of `Profile`; code reads the running
profile's fields and never compares version strings.
"""

from __future__ import annotations

from dataclasses import dataclass

# Key carriers, by the names http/auth.py knows them by.
BEARER = "bearer"  # Authorization: Bearer <key>
APIKEY = "apikey"  # Authorization: ApiKey <key>
QUERY_API_KEY = "query:api_key"
QUERY_KEY = "query:key"
X_API_KEY = "x-api-key"


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    # The order in which key carriers are looked at; the first non-empty one wins.
    key_carriers: tuple[str, ...]
    # `admins_id` when config.json does not say (4.22 reserves nothing; 4.27 ships
    # ["astrbot"]).
    default_admins_id: tuple[str, ...]
    # The HTTP status of every /im/message(s) business error; None: the usual rule
    # (200, or the honest code with --http-errors).
    im_error_status: int | None


SEED = Profile(
    name="4.22",
    key_carriers=(QUERY_API_KEY, QUERY_KEY, X_API_KEY, BEARER, APIKEY),
    default_admins_id=(),
    im_error_status=None,
)
V4_27 = Profile(
    name="4.27",
    key_carriers=(BEARER, APIKEY, QUERY_API_KEY, QUERY_KEY, X_API_KEY),
    default_admins_id=("astrbot",),
    im_error_status=400,
)
PROFILES = {profile.name: profile for profile in (SEED, V4_27)}


def parse_profile(text: str) -> str:
    """The profile name for an option value, or a ValueError naming what is accepted."""
    name = text.strip()
    if name not in PROFILES:
        raise ValueError("expected one of " + ", ".join(PROFILES))
    return name
