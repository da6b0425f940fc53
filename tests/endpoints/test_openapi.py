"""openapi.json and the routing table describe the same API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from astrlite.endpoints.page import ASSETS
from astrlite.endpoints.routes import build_table
from tests.support.server import running_server

ROOT = Path(__file__).resolve().parents[2]
# Paths served only with some configuration (an outbox platform, --metrics).
CONDITIONAL = {("/api/v1/im/outbox", "GET"), ("/metrics", "GET")}
# The chat page's files are routes but not API operations (a generated client has no use
# for them), so the document leaves them out.
PAGE = {(path, "GET") for path in ASSETS}


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "openapi.json").read_text())
    return loaded


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    with running_server() as srv:
        table = build_table(srv.services)
    routed = {(path, method) for path, methods in table.items() for method in methods}
    documented = {
        (path, method.upper())
        for path, operations in document()["paths"].items()
        for method in operations
    }
    assert routed - CONDITIONAL - PAGE == documented - CONDITIONAL


def test_document_is_openapi_31_and_its_references_resolve() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    for ref in refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
    schemes = doc["components"]["securitySchemes"]
    carriers = {(s.get("in"), s.get("name"), s.get("scheme")) for s in schemes.values()}
    assert {
        ("header", "X-API-Key", None),
        ("query", "api_key", None),
        ("query", "key", None),
        (None, None, "bearer"),
        ("header", "Authorization", None),
    } <= carriers


def test_served_document_is_the_file() -> None:
    import httpx

    with running_server() as srv:
        served = httpx.get(srv.url + "/api/v1/openapi.json").content
    assert served == (ROOT / "openapi.json").read_bytes()


def test_the_top_level_copy_is_the_served_document() -> None:
    served = (ROOT / "astrlite" / "openapi.json").read_bytes()
    assert (ROOT / "openapi.json").read_bytes() == served, (
        "openapi.json differs from astrlite/openapi.json: edit astrlite/openapi.json "
        "(the file the build reads), then `make openapi` to copy it to the top level"
    )
