"""AstrBot's JSON envelope {"status","message","data"} (docs/compatibility.md M1): the
seed's bytes.

Handlers answer with the running profile's envelope (`Profile.envelope`); these module
functions are the seed's, for answers sent before a request reaches the app.
"""

from __future__ import annotations

from astrlite.compat import SEED

JSON_CONTENT_TYPE = b"application/json"


def error(message: str) -> bytes:
    return SEED.envelope.error(message)
