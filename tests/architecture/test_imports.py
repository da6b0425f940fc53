"""The package's boundaries, read from the imports of every module (TYPE_CHECKING and
function-level imports included): no cycles, and no edge that breaks the layering."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "astrlite"
API_AREAS = ("endpoints", "chat", "im", "files", "providers", "store", "outbound", "testing")
# (importer prefix, forbidden imported prefixes, why)
FORBIDDEN = [
    (
        "astrlite.http",
        [f"astrlite.{area}" for area in API_AREAS] + ["astrlite.runtime", "astrlite.services"],
        "the HTTP core is handed its route table; it knows no API area",
    ),
    *(
        (f"astrlite.{area}", ["astrlite.http", "astrlite.endpoints"], "domains know no HTTP")
        for area in ("chat", "im", "files", "providers", "store", "outbound")
    ),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path) -> Iterator[str]:
    """Every astrlite module this one imports, resolved to a module that exists."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{name}: relative import (use absolute imports)"
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [t if t in MODULES else node.module for t in targets]
        else:
            continue
        yield from (t for t in targets if t in MODULES and t != name)


GRAPH = {name: set(imported(name, path)) for name, path in MODULES.items()}


def cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    assert "astrlite.http.connection" in GRAPH["astrlite.http.server"]
    assert "astrlite.endpoints.routes" in GRAPH["astrlite.runtime"]


def test_no_import_cycles() -> None:
    assert cycles() == []


@pytest.mark.parametrize(("importer", "forbidden", "why"), FORBIDDEN)
def test_layering(importer: str, forbidden: list[str], why: str) -> None:
    bad = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name == importer or name.startswith(importer + ".")
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    )
    assert bad == [], why


def test_at_most_fifteen_top_level_modules() -> None:
    top = [path.name for path in PACKAGE.glob("*.py")]
    assert len(top) <= 15, sorted(top)
