"""POST /api/v1/im/messages (AstrBot 4.27's name for /im/message) and GET
/api/v1/chat/configs over real sockets: the same checks in the same order on both IM
paths; under 4.27 every IM error is HTTP 400 (docs/compatibility.md K5), under 4.22 the seed's
rule holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import TEST_KEY, Running, running_server

PATHS = ("/api/v1/im/messages", "/api/v1/im/message")
PLATFORMS = [{"id": "box", "type": "outbox"}, {"id": "off", "type": "outbox", "enable": False}]
EMPTY = "Message content is empty (reply only is not allowed)"
# K5 and M3, each body failing at one check, in the order the checks run.
ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"umo": "nope", "message": None}, "Missing key: message"),
    ({"message": "hi"}, "Missing key: umo"),
    ({"umo": "", "message": "hi"}, "Missing key: umo"),
    ({"umo": None, "message": "hi"}, "Missing key: umo"),
    (
        {"umo": "box", "message": "hi"},
        "Invalid umo: not enough values to unpack (expected 3, got 1)",
    ),
    ({"umo": "box:Bad:1", "message": "hi"}, "Invalid umo: 'Bad' is not a valid MessageType"),
    (
        {"umo": "ghost:FriendMessage:1", "message": "hi"},
        "Bot not found or not running for platform: ghost",
    ),
    (
        {"umo": "off:FriendMessage:1", "message": "hi"},
        "Bot not found or not running for platform: off",
    ),
    ({"umo": "box:FriendMessage:1"}, "message must be a string or list"),
    ({"umo": "box:FriendMessage:1", "message": 5}, "message must be a string or list"),
    (
        {"umo": "box:FriendMessage:1", "message": [{"type": "at"}]},
        "unsupported message part type: at",
    ),
    (
        {"umo": "box:FriendMessage:1", "message": [{"type": "image"}]},
        "image part missing attachment_id",
    ),
    (
        {"umo": "box:FriendMessage:1", "message": [{"type": "image", "attachment_id": "nope"}]},
        "attachment not found: nope",
    ),
    ({"umo": "box:FriendMessage:1", "message": ""}, EMPTY),
    ({"umo": "box:FriendMessage:1", "message": "   "}, EMPTY),
    ({"umo": "box:FriendMessage:1", "message": []}, EMPTY),
]


@pytest.fixture(scope="module")
def srv427() -> Iterator[Running]:
    with running_server(compat="4.27", config={"platforms": PLATFORMS}) as running:
        yield running


@pytest.fixture(scope="module")
def srv422() -> Iterator[Running]:
    extra = {"beta": {"name": "Beta"}, "alpha": {"name": "Alpha"}}
    with running_server(config={"platforms": PLATFORMS}, extra_configs=extra) as running:
        yield running


def post(srv: Running, path: str, body: Any) -> httpx.Response:
    return httpx.post(srv.url + path, headers={"X-API-Key": TEST_KEY}, json=body)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("body", "message"), ERRORS)
def test_every_error_is_400_under_427(
    srv427: Running, path: str, body: dict[str, Any], message: str
) -> None:
    response = post(srv427, path, body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["message"] == message


@pytest.mark.parametrize(("body", "message"), ERRORS)
def test_the_seed_rule_holds_under_422(srv422: Running, body: dict[str, Any], message: str) -> None:
    response = post(srv422, "/api/v1/im/messages", body)
    assert (response.status_code, response.json()) == (
        200,
        {"status": "error", "message": message, "data": None},
    )


@pytest.mark.parametrize("compat", ["4.22", "4.27"])
def test_http_errors(compat: str) -> None:
    with running_server(compat=compat, http_errors=True, config={"platforms": PLATFORMS}) as srv:
        response = post(
            srv, "/api/v1/im/messages", {"umo": "ghost:FriendMessage:1", "message": "x"}
        )
        assert response.status_code == (404 if compat == "4.22" else 400)


@pytest.mark.parametrize("path", PATHS)
def test_both_paths_send(srv427: Running, path: str) -> None:
    response = post(srv427, path, {"umo": "box:FriendMessage:u1", "message": f"via {path}"})
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "message": None, "data": {}},
    )
    sent = srv427.services.platforms.outbox.messages("box")[-1]
    assert (sent["umo"], sent["message"]) == (
        "box:FriendMessage:u1",
        [{"type": "plain", "text": f"via {path}"}],
    )


def test_protocol_errors_keep_their_status(srv427: Running) -> None:
    response = httpx.post(srv427.url + "/api/v1/im/messages", json={"umo": "x"})
    assert response.status_code == 401
    chat_key: str = srv427.create_key(scopes=["chat"])["api_key"]
    response = httpx.post(
        srv427.url + "/api/v1/im/messages", headers={"X-API-Key": chat_key}, json={}
    )
    assert (response.status_code, response.json()["message"]) == (403, "Insufficient API key scope")


# -- /chat/configs -----------------------------------------------------------------------


def test_chat_configs_is_the_info_list(srv422: Running) -> None:
    key: str = srv422.create_key(scopes=["chat"])["api_key"]
    response = httpx.get(srv422.url + "/api/v1/chat/configs", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert response.content == (
        b'{"status":"ok","message":null,"data":{"info_list":['
        b'{"path":"configs/alpha.json","name":"Alpha","id":"alpha"},'
        b'{"path":"configs/beta.json","name":"Beta","id":"beta"},'
        b'{"id":"default","name":"default","path":"config.json"}]}}\n'
    )
