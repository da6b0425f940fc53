"""The README's path for a client developer: build the wheel, install it with what the
example needs into a new virtual environment, and run a three-line test that uses the
pytest fixture. No network for astrlite itself (the wheel is a local file); its
dependencies, pytest and httpx come from pip's configured index and cache.

Cost: about 15 s on a busy machine (a wheel build, a venv, an install), so it is marked
`install`; it runs in CI with everything else (`-m "not install"` skips it locally).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from astrlite import __version__

ROOT = Path(__file__).resolve().parents[2]
CLIENT_TEST = """
import httpx

def test_my_client(astrlite_server):
    key = {"X-API-Key": astrlite_server.api_key}
    answer = httpx.get(astrlite_server.base_url + "/api/v1/configs", headers=key)
    assert answer.json()["data"]["configs"][0]["id"] == "default"
"""


def run(*argv: str | Path, cwd: Path) -> str:
    # Neither the repository's copy of astrlite nor this run's pytest settings.
    environ = {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PYTEST_")
    }
    result = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=environ, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def build_wheel(into: Path) -> Path:
    """What `make dist` runs, on a copy of the sources (the tree's build/ stays ours),
    with this environment's setuptools (a dev dependency) instead of an isolated one."""
    source = into / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "astrlite", source / "astrlite", ignore=shutil.ignore_patterns("__pycache__")
    )
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--wheel-dir",
        into,
        ".",
        cwd=source,
    )
    return into / f"astrlite-{__version__}-py3-none-any.whl"


@pytest.mark.install
@pytest.mark.timeout(600)
def test_the_wheel_in_a_fresh_venv_runs_a_test_with_the_fixture(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    # A venv without its own pip, installed into by this pip: the same install as
    # `venv/bin/pip install ...`, without ensurepip's ~10 s.
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        wheel,
        "pytest",
        "httpx",
        cwd=tmp_path,
    )
    project = tmp_path / "my-client"
    project.mkdir()
    (project / "test_client.py").write_text(CLIENT_TEST)
    out = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert "1 passed" in out
    where = run(python, "-c", "import astrlite; print(astrlite.__file__)", cwd=project)
    assert where.startswith(str(venv))
