"""These tests use astrlite exactly as another project would: through the installed
package's pytest plugin and astrlite.testing, with httpx as the client. Nothing here
imports astrlite's own test helpers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from astrlite.testing import AstrliteServer


@pytest.fixture
def client(astrlite_server: AstrliteServer) -> Iterator[httpx.Client]:
    headers = {"X-API-Key": astrlite_server.api_key}
    with httpx.Client(base_url=astrlite_server.base_url, headers=headers, timeout=10) as http:
        yield http
