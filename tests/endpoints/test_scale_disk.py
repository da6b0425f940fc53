"""Bounded disk (issue 14) over real sockets: the sweeper's retention and attachment cap,
a sweep racing downloads, and `astrlite db stats|vacuum` beside a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from astrlite import cli
from astrlite.files.attachments import AttachmentRow, OpenedFile
from astrlite.options import OptionError, parse
from astrlite.runtime import StartupError, start
from astrlite.store import clock
from astrlite.store.lock import DirectoryLock
from astrlite.store.sweeper import Limits, Sweeper, Swept
from tests.support.server import TEST_KEY, Running, running_server

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"X-API-Key": TEST_KEY}
ECHO = {"provider": "echo", "providers": [{"id": "echo", "type": "echo"}]}
NOT_FOUND = "Attachment not found"


@pytest.fixture
def srv() -> Iterator[Running]:
    with running_server(config=ECHO) as running:
        yield running


def upload(srv: Running, content: bytes, name: str = "a.bin") -> str:
    answer = httpx.post(
        f"{srv.url}/api/v1/file", headers=AUTH, files={"file": (name, content)}, timeout=5
    ).json()
    attachment_id: str = answer["data"]["attachment_id"]
    return attachment_id


def download(srv: Running, attachment_id: str) -> httpx.Response:
    return httpx.get(
        f"{srv.url}/api/v1/file", params={"attachment_id": attachment_id}, headers=AUTH, timeout=5
    )


def chat(srv: Running, session_id: str, username: str = "alice") -> None:
    body = {"username": username, "session_id": session_id, "message": "hi"}
    with httpx.stream("POST", f"{srv.url}/api/v1/chat", json=body, headers=AUTH) as response:
        assert response.status_code == 200
        response.read()


def sessions(srv: Running, username: str = "alice") -> dict[str, Any]:
    answer = httpx.get(
        f"{srv.url}/api/v1/chat/sessions", params={"username": username}, headers=AUTH
    ).json()
    data: dict[str, Any] = answer["data"]
    return data


def sweep(srv: Running, limits: Limits, batch: int = 2) -> Swept:
    sweeper = Sweeper(srv.db, srv.data_dir, limits, batch=batch, pause=0)
    result: Swept = srv.portal.call(sweeper.sweep)
    return result


def age(srv: Running, session_id: str, days: float) -> None:
    """Move a session and its rows back in time, as if idle for ``days``."""
    stamp = clock.iso(clock.now() - timedelta(days=days))
    srv.portal.call(
        srv.db.write,
        lambda conn: (
            conn.execute(
                "UPDATE sessions SET updated_at = ?, created_at = ? WHERE session_id = ?",
                (stamp, stamp, session_id),
            ),
            conn.execute(
                "UPDATE history SET created_at = ? WHERE session_id = ?", (stamp, session_id)
            ),
        ),
    )


# -- retention and the attachment cap -----------------------------------------------------


def test_retention_deletes_idle_sessions_and_old_rows_only(srv: Running) -> None:
    for session_id in ("old-1", "old-2", "old-3", "new"):
        chat(srv, session_id)
    for session_id in ("old-1", "old-2", "old-3"):
        age(srv, session_id, 10)
    assert sessions(srv)["total"] == 4
    swept = sweep(srv, Limits(retention_days=7))
    # Old rows go by age or with their session, whichever batch reaches them first.
    assert (swept.sessions, swept.attachments) == (3, 0) and swept.history <= 6
    listed = sessions(srv)
    assert listed["total"] == 1 and [s["session_id"] for s in listed["sessions"]] == ["new"]
    left = srv.db.reader.execute("SELECT DISTINCT session_id FROM history")
    assert [row[0] for row in left] == ["new"]
    assert sweep(srv, Limits(retention_days=7)) == Swept()  # nothing more to do


def test_the_attachment_cap_deletes_the_oldest_first(srv: Running) -> None:
    ids = [upload(srv, bytes([index]) * 1000, f"{index}.bin") for index in range(5)]
    paths = [srv.data_dir / row for row in _paths(srv, ids)]
    swept = sweep(srv, Limits(max_attachment_bytes=2500))
    assert swept.attachments == 3
    for attachment_id, path in zip(ids[:3], paths[:3], strict=True):
        answer = download(srv, attachment_id).json()
        assert answer["message"] == NOT_FOUND
        assert not path.exists()
    for index, attachment_id in enumerate(ids[3:], 3):
        assert download(srv, attachment_id).content == bytes([index]) * 1000
    total = srv.db.reader.execute("SELECT files, bytes FROM attachment_totals")
    assert tuple(total.fetchone()) == (2, 2000)


def _paths(srv: Running, ids: list[str]) -> list[str]:
    reader = srv.db.reader
    return [
        reader.execute("SELECT path FROM attachments WHERE attachment_id = ?", (i,)).fetchone()[0]
        for i in ids
    ]


def test_limits_off_by_default_and_options_parse() -> None:
    defaults = parse([], {})
    assert not Limits(defaults.retention_days, defaults.max_attachment_bytes).active
    chosen = parse(["--retention-days", "30"], {"ASTRLITE_MAX_ATTACHMENT_BYTES": "1000000"})
    assert (chosen.retention_days, chosen.max_attachment_bytes) == (30.0, 1_000_000)
    for wrong in ("-1", "a week", "inf"):
        with pytest.raises(OptionError) as refused:
            parse(["--retention-days", wrong], {})
        assert str(refused.value) == (
            "--retention-days: expected a number of days, 0 or more (0 keeps everything) "
            f"(got {wrong!r})"
        )
    with pytest.raises(OptionError, match="--max-attachment-bytes: expected a whole number"):
        parse(["--max-attachment-bytes", "2G"], {})


def test_a_server_started_with_a_cap_sweeps_in_the_background(tmp_path: Path) -> None:
    with running_server(config=ECHO, data_dir=str(tmp_path)) as srv:
        first, second = upload(srv, b"x" * 1000), upload(srv, b"y" * 1000)
    with running_server(config=ECHO, data_dir=str(tmp_path), max_attachment_bytes=1500) as srv:
        deadline = time.monotonic() + 10
        while download(srv, first).json().get("message") != NOT_FOUND:
            assert time.monotonic() < deadline, "the start-up sweep never ran"
            time.sleep(0.01)
        assert download(srv, second).content == b"y" * 1000


# -- a sweep racing downloads -------------------------------------------------------------


def test_a_download_that_opened_the_file_finishes_after_the_sweep(srv: Running) -> None:
    content = bytes(range(256)) * 16384  # 4 MiB: several reads
    attachment_id = upload(srv, content)
    with httpx.stream(
        "GET", f"{srv.url}/api/v1/file", params={"attachment_id": attachment_id}, headers=AUTH
    ) as response:
        chunks = response.iter_bytes()
        received = next(chunks)
        assert sweep(srv, Limits(max_attachment_bytes=1)).attachments == 1
        received += b"".join(chunks)
    assert received == content
    assert download(srv, attachment_id).json()["message"] == NOT_FOUND


def test_a_sweep_between_lookup_and_open_answers_not_found(
    srv: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    attachment_id = upload(srv, b"racy")
    store = srv.services.attachments
    real_open = store.open

    async def open_after_a_sweep(row: AttachmentRow) -> OpenedFile:
        sweeper = Sweeper(srv.db, srv.data_dir, Limits(max_attachment_bytes=1))
        await sweeper.sweep()
        return await real_open(row)

    monkeypatch.setattr(store, "open", open_after_a_sweep)
    answer = download(srv, attachment_id)
    assert answer.status_code == 200 and answer.json()["message"] == NOT_FOUND


# -- astrlite db stats | vacuum -----------------------------------------------------------


def run_cli(*args: str, data_dir: Path, after: bool = False) -> tuple[int, str, str]:
    where = ["--data-dir", str(data_dir)]
    words = [*args, *where] if after else [*where, *args]
    done = subprocess.run(
        [sys.executable, "-m", "astrlite", "db", *words],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr


def test_vacuum_is_refused_while_a_server_runs(srv: Running) -> None:
    chat(srv, "s1")
    code, out, err = run_cli("vacuum", data_dir=srv.data_dir)
    assert code == 1 and out == ""
    assert err == (
        f"astrlite: an astrlite server (pid {_pid()}) is using {srv.data_dir}: stop it, "
        "then run astrlite db vacuum again\n"
    )
    assert sessions(srv)["total"] == 1  # the server carries on


def _pid() -> int:
    return os.getpid()


def test_stats_while_serving_then_vacuum_once_stopped(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(ECHO))
    with running_server(config=ECHO, data_dir=str(tmp_path)) as srv:
        for index in range(3):
            chat(srv, f"s{index}")
        upload(srv, b"z" * 100)
        code, out, _ = run_cli("stats", "--json", data_dir=tmp_path)
        assert code == 0
        stats = json.loads(out)
        assert (stats["sessions"], stats["history_rows"], stats["attachments"]) == (3, 6, 1)
        assert stats["attachment_bytes"] == 100 and stats["api_keys"] == 0
        srv.portal.call(srv.db.write, lambda conn: conn.execute("DELETE FROM history"))
    code, out, err = run_cli("vacuum", data_dir=tmp_path)
    assert code == 0 and err == "" and out.startswith(f"vacuumed {tmp_path}: ")
    code, out, _ = run_cli("stats", data_dir=tmp_path, after=True)
    assert code == 0 and "history rows     0" in out and "sessions         3" in out


def test_a_server_does_not_start_while_vacuum_holds_the_directory(tmp_path: Path) -> None:
    lock = DirectoryLock.for_maintenance(tmp_path, "db vacuum")
    try:
        with pytest.raises(StartupError, match="astrlite db vacuum is compacting"):
            start(parse(["--data-dir", str(tmp_path), "--port", "0"], {}))
    finally:
        lock.release()
    start(parse(["--data-dir", str(tmp_path), "--port", "0"], {})).close()


def test_db_commands_explain_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["db", "--data-dir", str(tmp_path / "none"), "stats"]) == 1
    assert (
        capsys.readouterr().err
        == f"astrlite: no database in {tmp_path / 'none'}: check --data-dir\n"
    )
    with pytest.raises(SystemExit):
        cli.main(["db", "shrink"])
    assert "invalid choice: 'shrink'" in capsys.readouterr().err


def test_help_lists_the_commands_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["help", "db"]) == 0
    assert "stats|vacuum" in capsys.readouterr().out
    cli.main(["--help"])
    assert "astrlite db stats|vacuum" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--retention-days" in out and "--max-attachment-bytes" in out
