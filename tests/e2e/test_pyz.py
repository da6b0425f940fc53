"""The built archive itself: reproducible, self-contained, runnable read-only, and
friendly on Pythons it does not support."""

from __future__ import annotations

import glob
import json
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bench.common import pyz_is_current

ROOT = Path(__file__).resolve().parents[2]


def build(target: Path) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_pyz.py"), str(target)],
        check=True,
        capture_output=True,
    )
    return target


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("pyz") / "astrlite.pyz")


def other_python(version: str) -> str | None:
    """An interpreter of that version that really runs (pyenv shims may not)."""
    candidates = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python"))
    candidates += [found] if (found := shutil.which(f"python{version}")) else []
    for python in candidates:
        if subprocess.run([python, "-c", "pass"], capture_output=True).returncode == 0:
            return python
    return None


def test_two_builds_are_byte_identical(pyz: Path, tmp_path: Path) -> None:
    assert build(tmp_path / "again.pyz").read_bytes() == pyz.read_bytes()


def test_the_benchmarks_tell_a_pyz_of_other_sources(pyz: Path, tmp_path: Path) -> None:
    """`python -m bench` rebuilds dist/astrlite.pyz unless it holds the tree's sources."""
    assert pyz_is_current(pyz)
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "astrlite", tree / "astrlite", ignore=shutil.ignore_patterns("*.pyc"))
    assert pyz_is_current(pyz, tree)
    edited = tree / "astrlite" / "sse.py"
    edited.write_bytes(edited.read_bytes() + b"\n")
    assert not pyz_is_current(pyz, tree)
    edited.write_bytes((ROOT / "astrlite" / "sse.py").read_bytes())
    (tree / "astrlite" / "new.py").write_text("")
    assert not pyz_is_current(pyz, tree)
    assert not pyz_is_current(tmp_path / "missing.pyz")
    (tmp_path / "not-a.pyz").write_text("no zip")
    assert not pyz_is_current(tmp_path / "not-a.pyz")


def test_archive_holds_sources_bytecode_licences_and_no_caches(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {
            "__main__.py",
            "astrlite/cli.py",
            "astrlite/cli.pyc",
            "astrlite/openapi.json",
            "astrlite/page/index.html",
            "astrlite/page/page.js",
            "astrlite/page/page.css",
            "h11/__init__.py",
            "anyio/__init__.py",
        } <= set(names)
        assert any(n.startswith("h11-0.16.0.dist-info/") for n in names)
        assert any(n.startswith("anyio-") and "dist-info/licenses/" in n for n in names)
        assert not [n for n in names if "__pycache__" in n]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")


@pytest.fixture
def served(pyz: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    read_only = tmp_path / "ro"
    read_only.mkdir()
    archive = read_only / "astrlite.pyz"
    shutil.copy(pyz, archive)
    archive.chmod(0o444)
    read_only.chmod(0o555)
    process = subprocess.Popen(
        [sys.executable, str(archive), "--port", "0", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(" listening on ")[1].strip()
        while not (line := process.stdout.readline()).startswith("api_key: "):
            assert line, "the banner ended without an api_key line"
        key = line.split()[1]
        yield process, url, key
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        read_only.chmod(0o755)


def test_the_archive_serves_from_a_read_only_directory(
    served: tuple[subprocess.Popen[str], str, str],
) -> None:
    process, url, key = served
    assert url.startswith("http://127.0.0.1:")
    response = httpx.get(url + "/api/v1/im/bots", headers={"X-API-Key": key}, timeout=5)
    assert response.json() == {"status": "ok", "message": None, "data": {"bot_ids": []}}
    assert httpx.get(url + "/api/v1/openapi.json", timeout=5).json()["openapi"].startswith("3.1")
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert process.stderr is not None
    log = process.stderr.read()
    assert '"GET /api/v1/im/bots" 200' in log and "received SIGTERM" in log
    assert key not in log


def test_the_archive_chats_over_a_websocket_and_closes_it_on_sigterm(
    served: tuple[subprocess.Popen[str], str, str],
) -> None:
    process, url, key = served
    ws_url = url.replace("http://", "ws://") + "/api/v1/chat/ws"
    with connect(ws_url, additional_headers={"X-API-Key": key}, open_timeout=5) as conn:
        conn.send(json.dumps({"username": "pyz", "message": "hi", "message_id": "m"}))
        types = []
        while not types or types[-1] != "end":
            types.append(json.loads(conn.recv(timeout=5))["type"])
        assert types[0] == "session_id" and "message_saved" in types
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert process.wait(10) == 0


def test_the_archive_serves_the_chat_page(
    served: tuple[subprocess.Popen[str], str, str],
) -> None:
    _, url, _ = served
    for path, name in (("/", "index.html"), ("/page.js", "page.js"), ("/page.css", "page.css")):
        response = httpx.get(url + path, timeout=5)
        assert response.status_code == 200
        assert response.content == (ROOT / "astrlite" / "page" / name).read_bytes()
        assert response.headers["content-security-policy"].startswith("default-src 'self'")


def test_version_on_supported_pythons(pyz: Path) -> None:
    for version in ("3.10", "3.12", "3.13"):
        python = other_python(version)
        if python is None:
            continue
        result = subprocess.run([python, str(pyz), "--version"], capture_output=True, text=True)
        assert result.stdout.startswith("astrlite "), (version, result.stderr)


@pytest.mark.parametrize("version", ["2.7", "3.9"])
def test_old_pythons_get_a_friendly_message(pyz: Path, version: str) -> None:
    python = other_python(version)
    if python is None:
        pytest.skip(f"no Python {version} here")
    result = subprocess.run([python, str(pyz), "--version"], capture_output=True, text=True)
    assert result.returncode == 1
    expected = f"astrlite needs Python 3.10 or newer; this is Python {version}"
    assert result.stderr.startswith(expected)
