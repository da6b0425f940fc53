"""Start-up and the command line: data directory, database, keys CLI, clear errors."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from astrlite import cli
from astrlite.options import Options
from astrlite.principal import DEFAULT_SCOPES
from astrlite.runtime import StartupError, start
from astrlite.store import db as store_db


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_keys_create_list_revoke_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    code, out, _ = run_cli(
        capsys, "keys", "--data-dir", data, "create", "--name", "ci", "--scopes", "chat,file"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("key_id: ") and lines[1].startswith("api_key: abk_")
    key_id, api_key = lines[0][8:], lines[1][9:]
    assert len(api_key) == 47
    code, out, _ = run_cli(capsys, "keys", "--data-dir", data, "list", "--json")
    (listed,) = json.loads(out)
    assert list(listed) == [
        "key_id",
        "name",
        "key_prefix",
        "scopes",
        "created_by",
        "created_at",
        "updated_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "is_revoked",
        "is_expired",
    ]
    assert (listed["key_id"], listed["name"], listed["key_prefix"], listed["scopes"]) == (
        key_id,
        "ci",
        api_key[:12],
        ["chat", "file"],
    )
    code, out, _ = run_cli(capsys, "keys", "--data-dir", data, "list")
    assert out.splitlines()[0].split() == [
        "key_id",
        "name",
        "key_prefix",
        "scopes",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    assert run_cli(capsys, "keys", "--data-dir", data, "revoke", key_id)[:2] == (
        0,
        f"revoked {key_id}\n",
    )
    assert json.loads(run_cli(capsys, "keys", "--data-dir", data, "list", "--json")[1])[0][
        "is_revoked"
    ]
    assert run_cli(capsys, "keys", "--data-dir", data, "delete", key_id)[0] == 0
    assert json.loads(run_cli(capsys, "keys", "--data-dir", data, "list", "--json")[1]) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["revoke", "no-such-id"], "astrlite: API key not found\n"),
        (["delete", "no-such-id"], "astrlite: API key not found\n"),
        (["create", "--scopes", "admin"], "astrlite: Invalid scopes: admin\n"),
        (
            ["create", "--expires-in-days", "0"],
            "astrlite: expires_in_days must be greater than 0\n",
        ),
    ],
)
def test_keys_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run_cli(capsys, "keys", "--data-dir", str(tmp_path), *argv)
    assert (code, err) == (1, message)


def test_create_json_includes_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "keys", "--data-dir", str(tmp_path), "create", "--json", "--expires-in-days", "3"
    )
    assert code == 0
    created = json.loads(out)
    assert created["api_key"].startswith("abk_") and created["expires_at"] is not None
    assert created["scopes"] == list(DEFAULT_SCOPES)
    assert created["name"] == "Untitled API Key"


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    (tmp_path / "astrlite.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StartupError, match=r"cannot use .*astrlite.db: file is not a database"):
        start(Options(port=0, data_dir=str(tmp_path)), {})


def test_a_newer_database_is_refused_and_an_older_one_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = start(Options(port=0, data_dir=str(tmp_path)), {})
    runtime.close()
    newer = (*store_db.MIGRATIONS, "CREATE TABLE later (x INTEGER)")
    monkeypatch.setattr(store_db, "MIGRATIONS", newer)
    runtime = start(Options(port=0, data_dir=str(tmp_path)), {})  # migrates in place
    runtime.close()
    with sqlite3.connect(tmp_path / "astrlite.db") as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(newer)
        conn.execute("SELECT x FROM later")
    monkeypatch.setattr(store_db, "MIGRATIONS", newer[:-1])
    with pytest.raises(StartupError, match="written by a newer astrlite"):
        start(Options(port=0, data_dir=str(tmp_path)), {})


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(StartupError, match="cannot write to data directory"):
            start(Options(port=0, data_dir=str(tmp_path / "sub")), {})
    finally:
        tmp_path.chmod(0o755)


def test_read_only_data_dir_as_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Root ignores permission bits, so a data directory under a regular file stands in.
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, "--data-dir", str(tmp_path / "file" / "data"), "--port", "0")
    assert code == 1
    assert err.startswith(f"astrlite: cannot write to data directory {tmp_path}/file/data:")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ASTRLITE_PORT": "http"},
            "astrlite: ASTRLITE_PORT: expected a port number from 0 to 65535 "
            "(0 picks a free one) (got 'http')\n",
        ),
        (
            {"ASTRLITE_API_KEY": "short"},
            "astrlite: ASTRLITE_API_KEY: an API key must be 16-256 characters without whitespace\n",
        ),
        (
            {"ASTRLITE_LOG_LEVEL": "loud"},
            "astrlite: ASTRLITE_LOG_LEVEL: expected one of debug, "
            "info, warning, error (got 'loud')\n",
        ),
    ],
)
def test_bad_environment_values(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run_cli(capsys, "--data-dir", str(tmp_path))
    assert code in (1, 2)
    assert err.endswith(message)


def test_api_key_file_errors_name_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# ops keys\nlong-enough-key-000001\nbad key with spaces\n")
    code, _, err = run_cli(capsys, "--data-dir", str(tmp_path), "--api-key-file", str(key_file))
    assert code == 1
    assert err == (
        f"astrlite: {key_file}:3: an API key must be 16-256 characters without whitespace\n"
    )
