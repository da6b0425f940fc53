"""The pytest plugin (registered through the `pytest11` entry point, so installing
astrlite is enough): fixtures `astrlite_server` (one server per test) and
`astrlite_server_session` (one per test session).

Configure them in pytest.ini / pyproject.toml:

    [pytest]
    astrlite_http_errors = true
    astrlite_deterministic = true
    astrlite_seed = 7
    astrlite_compat = 4.27
    astrlite_options =
        max_json_bytes=4096
        sse_heartbeat=0.5

and per test with the marker, whose keywords are those of astrlite.testing.serve():

    @pytest.mark.astrlite(rules=[{"match": "hi", "reply": "Hello!"}], http_errors=True)
    def test_greeting(astrlite_server): ...

    @pytest.mark.astrlite(compat="4.27")  # the AstrBot version your client targets
    def test_resume(astrlite_server): ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from astrlite import options as server_options
from astrlite.testing import AstrliteServer, serve


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("astrlite_http_errors", "astrlite: honest HTTP error codes", type="bool")
    parser.addini("astrlite_deterministic", "astrlite: fixed clock and seeded ids", type="bool")
    parser.addini("astrlite_seed", "astrlite: seed of the ids in deterministic mode")
    parser.addini("astrlite_compat", "astrlite: the AstrBot version spoken, 4.22 or 4.27")
    parser.addini(
        "astrlite_options", "astrlite: serve options, one NAME=VALUE a line", type="linelist"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "astrlite(**settings): settings of the astrlite_server fixture"
    )


def ini_settings(config: pytest.Config) -> dict[str, Any]:
    """The settings pytest.ini gives every astrlite server."""
    settings: dict[str, Any] = {}
    if config.getini("astrlite_http_errors"):
        settings["http_errors"] = True
    if config.getini("astrlite_deterministic"):
        settings["deterministic"] = True
    compat = config.getini("astrlite_compat")
    if compat:
        settings["compat"] = str(compat).strip()
    seed = config.getini("astrlite_seed")
    if seed:
        settings["seed"] = int(seed)
    lines = [line for line in config.getini("astrlite_options") if line.strip()]
    if lines:
        argv = []
        for line in lines:
            name, _, value = line.partition("=")
            argv += ["--" + name.strip().replace("_", "-"), value.strip()]
        parsed = server_options.parse(argv, environ={})
        given = {line.partition("=")[0].strip() for line in lines}
        settings["options"] = {
            name: value for name, value in dataclasses.asdict(parsed).items() if name in given
        }
    return settings


@pytest.fixture
def astrlite_server(request: pytest.FixtureRequest) -> Iterator[AstrliteServer]:
    """A fresh astrlite server for this test (pytest.ini settings, then the marker's)."""
    settings = ini_settings(request.config)
    marker = request.node.get_closest_marker("astrlite")
    if marker is not None:
        settings.update(marker.kwargs)
    with serve(**settings) as server:
        yield server


@pytest.fixture(scope="session")
def astrlite_server_session(request: pytest.FixtureRequest) -> Iterator[AstrliteServer]:
    """One astrlite server shared by the whole test session (pytest.ini settings)."""
    with serve(**ini_settings(request.config)) as server:
        yield server
