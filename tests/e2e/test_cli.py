"""The command line as a user meets it: option order, help words, value errors that name
the option, a busy port, typos in ASTRLITE_* variables, keys with an empty database."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from astrlite import __version__, cli

Captured = tuple[int, str, str]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Captured:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_list_with_no_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "keys", "--data-dir", str(tmp_path), "list")
    assert (code, err) == (0, "")
    assert out == cli.NO_KEYS + "\n"
    assert run(capsys, "keys", "--data-dir", str(tmp_path), "list", "--json")[1] == "[]\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["--data-dir", "{d}", "keys", "create", "--name", "x"],
        ["keys", "--data-dir", "{d}", "create", "--name", "x"],
        ["keys", "create", "--data-dir", "{d}", "--name", "x"],
        ["keys", "create", "--name", "x", "--data-dir={d}"],
    ],
)
def test_options_before_or_after_the_sub_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *(a.format(d=tmp_path) for a in argv))
    assert (code, err) == (0, "")
    assert out.startswith("key_id: ")
    listed = run(capsys, "--data-dir", str(tmp_path), "keys", "list", "--json")[1]
    assert [k["name"] for k in json.loads(listed)] == ["x"]


def test_help_version_and_keys_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "version") == (0, f"astrlite {__version__}\n", "")
    code, out, _ = run(capsys, "help")
    assert code == 0 and out.startswith("usage: astrlite")
    code, out, _ = run(capsys, "help", "serve")
    assert code == 0 and "--cors-origins" in out and "--log-format" in out
    for argv in (["keys"], ["help", "keys"]):
        code, out, err = run(capsys, *argv)
        assert (code, err) == (0, "")
        assert "create|list|revoke|delete" in out and "create a key and print it once" in out


def test_an_unknown_command_suggests_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "kyes", "list")
    assert code == 2
    assert err == (
        "astrlite: unknown command 'kyes' (did you mean keys?); "
        "commands: serve, keys, db, help, version\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--port", "70000"],
            "--port: expected a port number from 0 to 65535 (0 picks a free one)",
        ),
        (["--port", "abc"], "--port: expected a port number from 0 to 65535 (0 picks a free one)"),
        (["--max-connections", "many"], "--max-connections: expected a whole number, 0 or more"),
        (["--shutdown-grace", "-1"], "--shutdown-grace: expected a number of seconds, 0 or more"),
        (["--log-format", "xml"], "--log-format: expected one of text, json"),
        (["--cors-origins", "example.org"], "--cors-origins: expected * or origins such as"),
    ],
)
def test_value_errors_name_the_option_and_what_it_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "--data-dir", str(tmp_path), *argv)
    assert code == 2 and out == ""
    assert err.startswith("astrlite: " + message)
    assert "Traceback" not in err and "invalid literal" not in err


def test_a_busy_port_suggests_another(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "serve", "--data-dir", str(tmp_path), "--port", str(port))
    assert code == 1
    assert err == (
        f"astrlite: cannot listen on 127.0.0.1:{port}: the port is in use (another astrlite?); "
        "choose another with --port (--port 0 picks a free one)\n"
    )


def test_an_unknown_variable_is_named_with_the_closest_known_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTRLITE_PROT", "8080")
    code, _, err = run(capsys, "keys", "--data-dir", str(tmp_path), "list")
    assert code == 0
    assert err == (
        "astrlite: warning: unknown environment variable ASTRLITE_PROT is ignored; "
        "did you mean ASTRLITE_PORT?\n"
    )
