"""Every JSON answer of the package speaks the running profile: each json_ok /
fixed_json_ok call outside the HTTP core passes an envelope style (Profile.envelope),
and the App is given the profile (the defaults are the seed's, for the HTTP core's own
tests only)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "astrlite"
ENVELOPED = {"json_ok", "fixed_json_ok"}


def calls(name: set[str]) -> list[tuple[Path, ast.Call]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "http":
            continue  # the HTTP core defines them
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in name
            ):
                found.append((path, node))
    return found


def test_every_envelope_answer_passes_the_profiles_style() -> None:
    found = calls(ENVELOPED)
    assert found  # the check reads something
    missing = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path, node in found
        if len(node.args) < 2 and not any(k.arg == "style" for k in node.keywords)
    ]
    assert missing == []


def test_the_app_is_given_the_profile() -> None:
    found = calls({"App"})
    assert found
    assert all(any(k.arg == "profile" for k in node.keywords) for _, node in found)
