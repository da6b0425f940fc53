from __future__ import annotations

import os

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's proxy settings must not reach the outbound HTTP tests."""
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def no_astrlite_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own ASTRLITE_* settings must not reach the servers and CLI runs
    the tests start (the CLI also warns about the names it does not know)."""
    for name in [name for name in os.environ if name.startswith("ASTRLITE_")]:
        monkeypatch.delenv(name)
