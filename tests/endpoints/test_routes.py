"""The one route table: every entry is public or needs exactly one known scope."""

from __future__ import annotations

import pytest

from astrlite.endpoints.routes import ROUTES, build_table
from astrlite.http.router import Route
from astrlite.principal import VALID_SCOPES
from tests.support.server import running_server


async def nothing(request: object) -> None:
    raise AssertionError("never called")


def test_every_route_is_public_or_has_exactly_one_known_scope() -> None:
    for entry in ROUTES:
        assert entry.public != (entry.scope is not None), entry
        assert entry.public or entry.scope in VALID_SCOPES, entry
    with running_server() as srv:
        table = build_table(srv.services)
    routes = [route for methods in table.values() for route in methods.values()]
    assert routes and all(route.public != (route.scope is not None) for route in routes)


def test_each_path_and_method_is_listed_once() -> None:
    keys = [(entry.method, entry.path) for entry in ROUTES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(("scope", "public"), [(None, False), ("chat", True)])
def test_a_route_without_exactly_one_policy_is_refused(scope: str | None, public: bool) -> None:
    with pytest.raises(ValueError, match="either public or needs exactly one scope"):
        Route(nothing, scope, public)  # type: ignore[arg-type]
