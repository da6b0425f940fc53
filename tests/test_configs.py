"""Config files: defaults, validation messages naming file and key, listing order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from astrlite import configs


def write(folder: Path, name: str, body: object) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body if isinstance(body, str) else json.dumps(body))


def test_first_run_writes_the_defaults(tmp_path: Path) -> None:
    loaded = configs.load(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written == {**configs.DEFAULT_CONFIG, "admins_id": []}
    default = loaded.default
    assert (default.id, default.name, default.path, default.provider) == (
        "default",
        "default",
        "config.json",
        "echo",
    )
    assert default.providers == ({"id": "echo", "type": "echo"},)
    assert (default.streaming, default.context_turns, default.display_reasoning) == (
        False,
        10,
        False,
    )


def test_first_run_writes_the_profiles_admin_ids(tmp_path: Path) -> None:
    loaded = configs.load(tmp_path, ("astrbot",))
    assert json.loads((tmp_path / "config.json").read_text())["admins_id"] == ["astrbot"]
    assert loaded.default.admins_id == ("astrbot",)


def test_admin_ids_are_read_from_every_config_as_text(tmp_path: Path) -> None:
    write(tmp_path, "config.json", {"admins_id": ["root", 42]})
    write(tmp_path, "configs/alpha.json", {"admins_id": ["zed"]})
    write(tmp_path, "configs/beta.json", {})
    loaded = configs.load(tmp_path, ("astrbot",))
    assert loaded.default.admins_id == ("root", "42")
    assert [c.admins_id for c in loaded.extras] == [("zed",), None]


@pytest.mark.parametrize("value", ["astrbot", [True], [["x"]], [None], {"a": 1}])
def test_admin_ids_must_be_a_list_of_strings(tmp_path: Path, value: object) -> None:
    write(tmp_path, "config.json", {"admins_id": value})
    with pytest.raises(configs.ConfigError, match=r"^config.json: admins_id: expected a list"):
        configs.load(tmp_path)


def test_listing_is_sorted_by_file_name_default_last(tmp_path: Path) -> None:
    write(tmp_path, "config.json", {})
    write(tmp_path, "configs/zeta.json", {"name": "Zeta"})
    write(tmp_path, "configs/alpha.json", {})
    listed = [(c.id, c.name, c.path) for c in configs.load(tmp_path).listed()]
    assert listed == [
        ("alpha", "alpha", "configs/alpha.json"),
        ("zeta", "Zeta", "configs/zeta.json"),
        ("default", "default", "config.json"),
    ]


@pytest.mark.parametrize(
    ("file", "body", "message"),
    [
        (
            "config.json",
            "{not json",
            "config.json: not valid JSON: Expecting property name "
            "enclosed in double quotes at line 1 column 2",
        ),
        ("config.json", "[]", "config.json: expected a JSON object"),
        ("config.json", {"streaming": "yes"}, "config.json: streaming: expected true or false"),
        (
            "config.json",
            {"context_turns": True},
            "config.json: context_turns: expected a whole number",
        ),
        ("config.json", {"context_turns": -1}, "config.json: context_turns: must not be negative"),
        ("config.json", {"stream": True}, "config.json: stream: unknown key"),
        (
            "config.json",
            {"providers": [{"id": "x", "type": "magic"}], "provider": "x"},
            "config.json: providers[0].type: unknown provider type 'magic' (use echo, scripted, "
            "openai)",
        ),
        (
            "config.json",
            {
                "providers": [{"id": "a", "type": "echo"}, {"id": "a", "type": "echo"}],
                "provider": "a",
            },
            "config.json: providers[1].id: duplicate provider id 'a'",
        ),
        (
            "config.json",
            {"provider": "nope"},
            "config.json: provider: 'nope' is not the id of any providers entry",
        ),
        (
            "config.json",
            {"providers": [{"id": "s", "type": "scripted"}], "provider": "s"},
            "config.json: providers[0]: missing rules_file",
        ),
        (
            "config.json",
            {"platforms": [{"type": "telegram", "token": "t"}]},
            "config.json: platforms[0].id: expected a non-empty string",
        ),
        (
            "config.json",
            {"platforms": [{"id": "x", "type": "irc"}]},
            "config.json: platforms[0].type: unknown platform type 'irc' (use telegram, onebot, "
            "webhook, outbox)",
        ),
        (
            "configs/extra.json",
            {"platforms": []},
            "configs/extra.json: platforms: platforms are read from config.json only",
        ),
        (
            "configs/default.json",
            {},
            "configs/default.json: the id 'default' belongs to config.json",
        ),
    ],
)
def test_invalid_files_name_the_file_and_the_problem(
    tmp_path: Path, file: str, body: object, message: str
) -> None:
    write(tmp_path, file, body)
    with pytest.raises(configs.ConfigError) as caught:
        configs.load(tmp_path)
    assert str(caught.value) == message


def test_bot_ids_in_order_deduplicated_disabled_included_never_webchat(tmp_path: Path) -> None:
    platforms = [
        {"id": "tg", "type": "telegram", "token": "t"},
        {"id": "qq", "type": "onebot", "enable": False},
        {"id": "tg", "type": "telegram", "token": "u"},
        {"id": "webchat", "type": "webhook"},
    ]
    write(tmp_path, "config.json", {"platforms": platforms})
    assert configs.bot_ids(configs.load(tmp_path).default) == ["tg", "qq"]
