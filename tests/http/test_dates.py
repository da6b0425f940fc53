from __future__ import annotations

from email.utils import formatdate

import pytest

from astrlite.http.dates import http_date


@pytest.mark.parametrize("timestamp", [0, 951782400, 1795523186.18, 4102444799])
def test_matches_the_standard_library(timestamp: float) -> None:
    assert http_date(timestamp) == formatdate(timestamp, usegmt=True)
