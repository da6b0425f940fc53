"""Keys and admins over real sockets (M4, K1–K3, both profiles): the CLI's scope
normalisation and errors, the 4.27 carrier order, the admin-username guard on
POST /api/v1/chat in its place in the check order, and GET|PUT /api/v1/system-config
(only admins_id, changed only with config:edit_admin; G2)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from astrlite import cli
from astrlite.options import Options
from astrlite.principal import DEFAULT_SCOPES
from astrlite.runtime import start
from astrlite.store import keys
from tests.support.server import TEST_KEY, Running, running_server

RESERVED = "username is reserved for an AstrBot administrator"
EDIT_ADMIN = "config:edit_admin scope is required to change admins_id"
SAVED = "保存成功~"
INVALID = "Invalid API key"
MISSING = "Missing API key"
SCOPE = "Insufficient API key scope"
SECRET = "sk-very-secret-upstream-key"
# A config whose secrets must never leave the server.
CONFIG = {
    "providers": [
        {"id": "echo", "type": "echo"},
        {
            "id": "up",
            "type": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "model": "m",
            "api_key": SECRET,
        },
    ],
}


def error_of(response: httpx.Response) -> tuple[int, str]:
    """Status and message of an error envelope (whichever profile's bytes)."""
    body = response.json()
    assert body["status"] == "error", body
    return response.status_code, body["message"]


def make_key(srv: Running, scopes: str | None) -> str:
    """A key made as `astrlite keys create --scopes <scopes>` makes it."""
    created = srv.create_key(scopes=keys.parse_scopes(scopes))
    key: str = created["api_key"]
    return key


def chat(srv: Running, key: str, **body: Any) -> httpx.Response:
    return httpx.post(srv.url + "/api/v1/chat", headers={"X-API-Key": key}, json=body)


def chat_error(srv: Running, key: str, **body: Any) -> str:
    response = chat(srv, key, **body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json", response.text
    message: str = response.json()["message"]
    return message


def chat_events(srv: Running, key: str, **body: Any) -> list[dict[str, Any]]:
    response = chat(srv, key, **body)
    assert response.headers["content-type"].startswith("text/event-stream"), response.text
    return [json.loads(line[6:]) for line in response.text.split("\n") if line.startswith("data: ")]


def session_creators(srv: Running) -> dict[str, str]:
    with sqlite3.connect(srv.data_dir / "astrlite.db") as conn:
        return dict(conn.execute("SELECT session_id, creator FROM sessions").fetchall())


def system_config(srv: Running, key: str) -> httpx.Response:
    return httpx.get(srv.url + "/api/v1/system-config", headers={"X-API-Key": key})


def put_config(srv: Running, key: str, body: Any) -> httpx.Response:
    return httpx.put(srv.url + "/api/v1/system-config", headers={"X-API-Key": key}, json=body)


@pytest.fixture(scope="module")
def srv427() -> Iterator[Running]:
    with running_server(
        compat="4.27", config=CONFIG, extra_configs={"alpha": {"admins_id": ["zed"]}}
    ) as running:
        yield running


@pytest.fixture(scope="module")
def srv422() -> Iterator[Running]:
    with running_server() as running:
        yield running


# -- astrlite keys create ----------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("requested", "stored"),
    [
        (None, list(DEFAULT_SCOPES)),
        ("config", ["config", "bot", "provider"]),
        ("config,config:edit_admin", ["config", "config:edit_admin", "bot", "provider"]),
        ("provider,config", ["provider", "config", "bot"]),
        ("chat,chat:admin", ["chat", "chat:admin"]),
        ("im,im,chat", ["im", "chat"]),
        (" im , chat ", ["im", "chat"]),
        ("bot", ["bot"]),
        ("mcp,skill", ["mcp", "skill"]),
        ("file", ["file"]),
    ],
)
def test_cli_normalises_scopes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], requested: str | None, stored: list[str]
) -> None:
    argv = ["keys", "--data-dir", str(tmp_path), "create", "--json"]
    argv += [] if requested is None else ["--scopes", requested]
    code, out, err = run_cli(capsys, *argv)
    assert (code, err) == (0, "")
    assert json.loads(out)["scopes"] == stored
    code, out, _ = run_cli(capsys, "keys", "--data-dir", str(tmp_path), "list", "--json")
    assert json.loads(out)[0]["scopes"] == stored


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scopes", "im,bogus,im,*,system"], "Invalid scopes: bogus, *, system"),
        (["--scopes", "*"], "Invalid scopes: *"),
        (["--scopes", "tool,skills,kb"], "Invalid scopes: tool, skills, kb"),
        (["--scopes", "config:edit_admin"], "config:edit_admin requires the config scope"),
        (["--scopes", "chat:admin"], "chat:admin requires the chat scope"),
        (
            ["--scopes", "chat:admin,config:edit_admin"],
            "config:edit_admin requires the config scope",
        ),
        (["--scopes", ""], "At least one valid scope is required"),
        (["--scopes", " , "], "At least one valid scope is required"),
        # Scope errors come before expires_in_days errors.
        (["--scopes", "bogus", "--expires-in-days", "0"], "Invalid scopes: bogus"),
        (["--expires-in-days", "0"], "expires_in_days must be greater than 0"),
    ],
)
def test_cli_scope_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, "keys", "--data-dir", str(tmp_path), "create", *argv)
    assert (code, out, err) == (1, "", f"astrlite: {message}\n")
    code, out, _ = run_cli(capsys, "keys", "--data-dir", str(tmp_path), "list", "--json")
    assert json.loads(out) == []  # nothing was created


def test_cli_blank_name_is_untitled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "keys", "--data-dir", str(tmp_path), "create", "--json", "--name", "  "
    )
    assert code == 0 and json.loads(out)["name"] == "Untitled API Key"


# -- carriers ----------------------------------------------------------------------------


def bots(srv: Running, key_params: dict[str, str], headers: dict[str, str]) -> httpx.Response:
    return httpx.get(srv.url + "/api/v1/im/bots", params=key_params, headers=headers)


def test_carrier_order_under_427(srv427: Running) -> None:
    good = make_key(srv427, "im")
    bad = "abk_" + "x" * 43
    cases: list[tuple[dict[str, str], dict[str, str], int, Any]] = [
        ({"api_key": good}, {"Authorization": f"Bearer {bad}"}, 401, INVALID),  # Bearer wins
        ({"api_key": bad}, {"X-API-Key": good}, 401, INVALID),  # query before header
        ({"api_key": bad}, {"Authorization": f"ApiKey {good}"}, 200, None),  # ApiKey first
        ({"api_key": "", "key": good}, {}, 200, None),
        ({"api_key": f"  {good}  "}, {}, 200, None),  # values are stripped
        ({}, {"Authorization": f"bearer {good}"}, 401, MISSING),  # the prefix is exact
        ({"key": bad}, {"Authorization": f"Bearer {good}"}, 200, None),
        ({}, {"Authorization": f"Bearer {good}", "X-API-Key": bad}, 200, None),
    ]
    for params, headers, status, message in cases:
        response = bots(srv427, params, headers)
        assert response.status_code == status, (params, headers)
        if message is not None:
            assert error_of(response) == (status, message)


def test_carrier_order_of_the_seed_is_unchanged(srv422: Running) -> None:
    good = make_key(srv422, "im")
    bad = "abk_" + "x" * 43
    assert bots(srv422, {"api_key": good}, {"Authorization": f"Bearer {bad}"}).status_code == 200
    assert (
        bots(srv422, {"api_key": bad}, {"Authorization": f"ApiKey {good}"}).json()["message"]
        == INVALID
    )
    assert (
        bots(srv422, {}, {"X-API-Key": good, "Authorization": f"Bearer {bad}"}).status_code == 200
    )


def test_query_keys_can_still_be_refused_under_427() -> None:
    with running_server(compat="4.27", no_query_keys=True) as srv:
        response = bots(srv, {"api_key": TEST_KEY}, {})
        assert response.status_code == 401
        assert response.json()["message"] == "API keys in the query string are disabled"
        assert bots(srv, {"api_key": "x"}, {"Authorization": f"Bearer {TEST_KEY}"}).is_success


# -- scopes on the wire ------------------------------------------------------------------


def test_config_includes_bot_and_provider_but_not_the_sub_scope(srv427: Running) -> None:
    config_key = make_key(srv427, "config")
    assert system_config(srv427, config_key).status_code == 200
    assert httpx.get(srv427.url + "/api/v1/configs", headers={"X-API-Key": config_key}).is_success
    # chat/configs needs chat (K6).
    chat_configs = httpx.get(srv427.url + "/api/v1/chat/configs", headers={"X-API-Key": config_key})
    assert error_of(chat_configs) == (403, SCOPE)
    bot_key = make_key(srv427, "bot")
    assert error_of(system_config(srv427, bot_key)) == (403, SCOPE)  # no upward inclusion


def test_a_stored_key_without_a_list_has_the_defaults_only(srv427: Running) -> None:
    created = srv427.create_key(scopes=["im"])
    with sqlite3.connect(srv427.data_dir / "astrlite.db") as conn:
        conn.execute("UPDATE api_keys SET scopes = 'null' WHERE key_id = ?", (created["key_id"],))
    key = created["api_key"]
    assert system_config(srv427, key).status_code == 200
    assert chat_error(srv427, key, username="astrbot", message="hi") == RESERVED
    assert put_config(srv427, key, {"admins_id": ["other"]}).json()["message"] == EDIT_ADMIN


# -- the admin guard on /chat ------------------------------------------------------------


def test_guard_refuses_a_configured_admin_name_without_chat_admin(srv427: Running) -> None:
    key = make_key(srv427, "chat")
    before = session_creators(srv427)
    assert chat_error(srv427, key, username="astrbot", message="hi") == RESERVED
    assert chat_error(srv427, key, username="  astrbot ", message="hi") == RESERVED  # stripped
    assert chat_error(srv427, key, username="zed", message="hi") == RESERVED  # another config
    assert session_creators(srv427) == before  # nothing created
    # Exact comparison: another spelling is an ordinary name.
    assert chat_events(srv427, key, username="Astrbot", message="hi")[0]["type"] == "session_id"


def test_guard_comes_after_the_username_checks_and_before_the_session(srv427: Running) -> None:
    key = make_key(srv427, "chat")
    events = chat_events(srv427, key, username="alice", message="hi")
    alices = events[0]["session_id"]
    assert chat_error(srv427, key, message="hi") == "Missing key: username"
    assert chat_error(srv427, key, username=" ", message="hi") == "username is empty"
    # Another user's session, a bad config, no message: the guard answers first.
    body = {"username": "astrbot", "session_id": alices, "config_id": "nope"}
    assert chat_error(srv427, key, **body) == RESERVED
    assert chat_error(srv427, key, username="bob", session_id=alices, message="hi") == (
        "session_id belongs to another username"
    )
    assert session_creators(srv427)[alices] == "alice"


@pytest.mark.parametrize("scopes", ["chat,chat:admin", None])
def test_chat_admin_or_wildcard_may_use_the_admin_name(srv427: Running, scopes: str | None) -> None:
    key = TEST_KEY if scopes is None else make_key(srv427, scopes)  # TEST_KEY has `*`
    events = chat_events(srv427, key, username="astrbot", message="hi")
    assert events[-1]["type"] == "end"
    assert session_creators(srv427)[events[0]["session_id"]] == "astrbot"


def test_a_stored_wildcard_key_counts_as_both_sub_scopes(srv427: Running) -> None:
    key: str = srv427.create_key(scopes=["*"])["api_key"]
    assert chat_events(srv427, key, username="zed", message="hi")[-1]["type"] == "end"
    assert put_config(srv427, key, {"admins_id": ["astrbot"]}).json()["message"] == SAVED


def test_nothing_is_reserved_by_default_under_422(srv422: Running) -> None:
    key = make_key(srv422, "chat")
    assert chat_events(srv422, key, username="astrbot", message="hi")[-1]["type"] == "end"
    config = system_config(srv422, TEST_KEY).json()["data"]["config"]
    assert config == {"admins_id": []}
    assert json.loads((srv422.data_dir / "config.json").read_text())["admins_id"] == []


def test_admins_in_config_json_are_guarded_under_422_too() -> None:
    with running_server(config={"admins_id": ["root", 7]}, http_errors=True) as srv:
        key = make_key(srv, "chat")
        response = chat(srv, key, username="7", message="hi")
        assert (response.status_code, response.json()["message"]) == (403, RESERVED)
        assert chat(srv, key, username="astrbot", message="hi").status_code == 200


# -- system-config -----------------------------------------------------------------------


def test_system_config_shows_admins_id_and_nothing_else(srv427: Running) -> None:
    response = system_config(srv427, make_key(srv427, "config"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    data = body["data"]
    assert list(data) == ["config", "metadata", "server_utc_time", "server_utc_offset_minutes"]
    assert data["config"] == {"admins_id": ["astrbot"]}
    assert data["server_utc_offset_minutes"] == 0
    assert data["server_utc_time"].endswith("+00:00")
    assert SECRET not in response.text and "127.0.0.1:9" not in response.text  # G2


def test_system_config_needs_the_config_scope(srv427: Running) -> None:
    key = make_key(srv427, "chat,file,im")
    for response in (system_config(srv427, key), put_config(srv427, key, {})):
        assert error_of(response) == (403, SCOPE)


def test_system_config_has_no_patch_or_post(srv427: Running) -> None:
    for method in ("PATCH", "POST", "DELETE"):
        response = httpx.request(
            method, srv427.url + "/api/v1/system-config", headers={"X-API-Key": TEST_KEY}
        )
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, PUT, HEAD, OPTIONS"


def test_changing_admins_id_needs_config_edit_admin() -> None:
    # As AstrBot's own test does (K3): a config key reads the config, adds an id and is
    # refused; a config + config:edit_admin key succeeds and the change is live.
    with running_server(compat="4.27", config=CONFIG, http_errors=False) as srv:
        plain = make_key(srv, "config")
        editor = make_key(srv, "config,config:edit_admin")
        (srv.data_dir / "config.json").chmod(0o600)
        file_before = (srv.data_dir / "config.json").read_text()
        config = system_config(srv, plain).json()["data"]["config"]
        config["admins_id"] = [*config["admins_id"], "api-key-test-admin"]
        refused = put_config(srv, plain, config)
        assert (refused.status_code, refused.json()["message"]) == (403, EDIT_ADMIN)
        assert (srv.data_dir / "config.json").read_text() == file_before
        # The unchanged list needs no sub-scope; other keys are ignored.
        unchanged = {"admins_id": ["astrbot"], "wake_prefix": ["/"]}
        assert put_config(srv, plain, unchanged).json() == {
            "status": "ok",
            "message": SAVED,
            "data": {},
        }
        assert put_config(srv, plain, {"wake_prefix": ["!"]}).json()["message"] == SAVED
        accepted = put_config(srv, editor, config)
        assert (accepted.status_code, accepted.json()["message"]) == (200, SAVED)
        assert system_config(srv, plain).json()["data"]["config"] == {
            "admins_id": ["astrbot", "api-key-test-admin"]
        }
        chatter = make_key(srv, "chat")
        assert chat_error(srv, chatter, username="api-key-test-admin", message="hi") == RESERVED
        saved = json.loads((srv.data_dir / "config.json").read_text())
        assert saved == {**CONFIG, "admins_id": ["astrbot", "api-key-test-admin"]}
        assert (srv.data_dir / "config.json").stat().st_mode & 0o777 == 0o600
        assert [p.name for p in srv.data_dir.iterdir() if p.name.endswith(".tmp")] == []
        # Removing an id frees the name at once.
        assert put_config(srv, editor, {"admins_id": []}).json()["message"] == SAVED
        assert chat_events(srv, chatter, username="astrbot", message="hi")[-1]["type"] == "end"


def test_admins_id_survives_a_restart() -> None:
    with running_server(compat="4.27", config={"name": "mine"}) as srv:
        assert put_config(srv, TEST_KEY, {"admins_id": ["ops", 42]}).json()["message"] == SAVED
        assert json.loads((srv.data_dir / "config.json").read_text()) == {
            "name": "mine",
            "admins_id": ["ops", "42"],
        }
        # What the next start reads (a second server on the same data directory).
        options = Options(port=0, data_dir=str(srv.data_dir), compat="4.27")
        with start(options, {}) as runtime:
            admins = runtime.services.admins
            assert admins.default == ["ops", "42"]
            assert admins.reserved("ops") and not admins.reserved("astrbot")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("astrbot", "格式校验未通过: ['错误的类型 admins_id: 期望是 list, 得到了 str']"),
        (None, "格式校验未通过: ['错误的类型 admins_id: 期望是 list, 得到了 NoneType']"),
        ({"a": 1}, "格式校验未通过: ['错误的类型 admins_id: 期望是 list, 得到了 dict']"),
        (["ok", True], "格式校验未通过: ['错误的类型 admins_id[1]: 期望是 str, 得到了 bool']"),
        ([["x"]], "格式校验未通过: ['错误的类型 admins_id[0]: 期望是 str, 得到了 list']"),
    ],
)
def test_a_wrong_admins_id_is_refused(srv427: Running, value: Any, message: str) -> None:
    before = system_config(srv427, TEST_KEY).json()["data"]["config"]
    response = put_config(srv427, TEST_KEY, {"admins_id": value})
    assert (response.status_code, response.json()["message"]) == (400, message)
    assert system_config(srv427, TEST_KEY).json()["data"]["config"] == before


def test_the_edit_gate_comes_before_the_type_check(srv427: Running) -> None:
    response = put_config(srv427, make_key(srv427, "config"), {"admins_id": "astrbot"})
    assert (response.status_code, response.json()["message"]) == (403, EDIT_ADMIN)


@pytest.mark.parametrize("body", [b"", b"not json", b"[1]", b'"x"'])
def test_a_body_that_is_no_object(srv427: Running, body: bytes) -> None:
    response = httpx.put(
        srv427.url + "/api/v1/system-config",
        headers={"X-API-Key": TEST_KEY, "Content-Type": "application/json"},
        content=body,
    )
    assert response.json()["message"] == "Request body must be a JSON object"


def test_a_config_json_broken_since_the_start_is_not_overwritten() -> None:
    with running_server(compat="4.27") as srv:
        config_file = srv.data_dir / "config.json"
        config_file.write_text("{broken")
        response = put_config(srv, TEST_KEY, {"admins_id": ["x"]})
        assert (response.status_code, response.json()["message"]) == (
            500,
            "Cannot save config.json: it is no longer a JSON object",
        )
        assert config_file.read_text() == "{broken"
        assert system_config(srv, TEST_KEY).json()["data"]["config"] == {"admins_id": ["astrbot"]}


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("4.22", b'{"status":"ok","message":"\\u4fdd\\u5b58\\u6210\\u529f~","data":{}}\n'),
        ("4.27", '{"status":"ok","message":"保存成功~","data":{}}'.encode()),
    ],
)
def test_the_saved_message_is_in_the_profiles_envelope(
    srv422: Running, srv427: Running, profile: str, expected: bytes
) -> None:
    srv = srv427 if profile == "4.27" else srv422
    unchanged = system_config(srv, TEST_KEY).json()["data"]["config"]
    assert put_config(srv, TEST_KEY, unchanged).content == expected
