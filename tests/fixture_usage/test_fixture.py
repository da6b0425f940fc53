"""astrlite as a test fixture, used the way a client project would use it."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import anyio
import httpx
import pytest

from astrlite.testing import AstrliteServer, serve, serve_async

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def read_events(response: httpx.Response) -> list[dict[str, object]]:
    return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


def test_streamed_chat_with_the_default_echo(client: httpx.Client) -> None:
    body = {"username": "alice", "message": "hello there"}
    with client.stream("POST", "/api/v1/chat", json=body) as response:
        assert response.headers["content-type"] == "text/event-stream"
        events = read_events(response)
    types = [e["type"] for e in events]
    assert types == [
        "session_id",
        "plain",
        "plain",
        "plain",
        "agent_stats",
        "complete",
        "message_saved",
        "end",
    ]
    assert events[5]["data"] == "Echo: hello there"


@pytest.mark.astrlite(
    rules=[
        {
            "match": "weather?",
            "reply": "Sunny.",
            "tool_call": {"name": "get_weather", "args": {"city": "Paris"}, "result": "sun"},
        }
    ]
)
def test_scripted_reply_with_a_tool_call(client: httpx.Client) -> None:
    body = {"username": "bob", "message": "weather?", "enable_streaming": False}
    with client.stream("POST", "/api/v1/chat", json=body) as response:
        events = read_events(response)
    assert [(e["type"], e.get("chain_type")) for e in events] == [
        ("session_id", None),
        ("plain", "tool_call"),
        ("plain", "tool_call_result"),
        ("plain", None),
        ("message_saved", None),
        ("agent_stats", None),
        ("end", None),
    ]
    call = json.loads(str(events[1]["data"]))
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
    assert events[3]["data"] == "Sunny."


def test_scripted_attachment_reply_can_be_downloaded(tmp_path: Path) -> None:
    picture = tmp_path / "sun.png"
    picture.write_bytes(PNG)
    rules = [
        {"match": "pic", "reply": "here", "attachment": {"path": str(picture), "kind": "image"}}
    ]
    with (
        serve(rules=rules) as server,
        httpx.Client(base_url=server.base_url, headers={"X-API-Key": server.api_key}) as http,
    ):
        body = {"username": "carol", "message": "pic", "enable_streaming": False}
        with http.stream("POST", "/api/v1/chat", json=body) as response:
            events = read_events(response)
        image = next(e for e in events if e["type"] == "image")
        assert str(image["data"]).startswith("[IMAGE]")


def test_upload_helper_and_download(astrlite_server: AstrliteServer, client: httpx.Client) -> None:
    uploaded = astrlite_server.upload(PNG, "dot.png", content_type="image/png")
    assert (uploaded["filename"], uploaded["type"]) == ("dot.png", "image")
    response = client.get("/api/v1/file", params={"attachment_id": uploaded["attachment_id"]})
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"


def test_keys_with_given_scopes(astrlite_server: AstrliteServer) -> None:
    im_only = astrlite_server.create_key(["im"])
    url = astrlite_server.base_url
    assert httpx.get(url + "/api/v1/im/bots", headers={"X-API-Key": im_only}).status_code == 200
    assert httpx.get(url + "/api/v1/configs", headers={"X-API-Key": im_only}).status_code == 403


@pytest.mark.astrlite(http_errors=True, options={"max_json_bytes": 64})
def test_marker_settings_apply(client: httpx.Client) -> None:
    response = client.get("/api/v1/chat/sessions")
    assert (response.status_code, response.json()["message"]) == (400, "Missing key: username")
    response = client.post("/api/v1/chat", json={"username": "x", "message": "y" * 100})
    assert response.status_code == 413


def test_restart_applies_new_configuration(astrlite_server: AstrliteServer) -> None:
    url, key = astrlite_server.base_url, astrlite_server.api_key
    astrlite_server.restart(configs={"alpha": {"name": "Alpha"}})
    assert astrlite_server.base_url == url
    configs = httpx.get(url + "/api/v1/configs", headers={"X-API-Key": key}).json()["data"]
    assert [c["id"] for c in configs["configs"]] == ["alpha", "default"]


def test_two_parallel_servers_in_one_test() -> None:
    with serve() as first, serve(rules=[{"match": "x", "reply": "from second"}]) as second:
        assert first.base_url != second.base_url
        assert first.data_dir != second.data_dir
        for server, expected in ((first, "Echo: x"), (second, "from second")):
            response = httpx.post(
                server.base_url + "/api/v1/chat",
                headers={"X-API-Key": server.api_key},
                json={"username": "u", "message": "x", "enable_streaming": False},
            )
            texts = [
                json.loads(line[6:])["data"]
                for line in response.text.splitlines()
                if line.startswith("data: ") and '"plain"' in line
            ]
            assert texts == [expected]


def test_deterministic_transcripts_are_byte_identical() -> None:
    def transcript() -> bytes:
        with serve(deterministic=True, seed=3) as server:
            key = server.create_key(["chat"])
            response = httpx.post(
                server.base_url + "/api/v1/chat",
                headers={"X-API-Key": key},
                json={"username": "d", "message": "same every time"},
            )
            sessions = httpx.get(
                server.base_url + "/api/v1/chat/sessions",
                params={"username": "d"},
                headers={"X-API-Key": key},
            )
            return response.content + sessions.content

    assert transcript() == transcript()


@pytest.mark.anyio
async def test_async_form_on_the_callers_loop() -> None:
    async with serve_async() as server, httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get("/api/v1/im/bots", headers={"X-API-Key": server.api_key})
        assert response.json()["data"] == {"bot_ids": []}
        await anyio.sleep(0)


def test_leaving_the_block_removes_the_data_directory() -> None:
    with serve() as server:
        folder = server.data_dir
        assert (folder / "astrlite.db").exists()
    assert not folder.exists()


def test_a_thousand_start_stop_cycles_leak_nothing() -> None:
    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    def rss_kib() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    for _ in range(20):  # warm up imports and caches
        with serve():
            pass
    threads, fds, rss = threading.active_count(), descriptors(), rss_kib()
    for _ in range(1000):
        with serve():
            pass
    assert threading.active_count() <= threads
    assert descriptors() <= fds + 2
    assert rss_kib() - rss < 20 * 1024  # well under 20 KiB per cycle


def test_ini_options_configure_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nastrlite_http_errors = true\nastrlite_options =\n    max_json_bytes=32\n"
    )
    pytester.makepyfile(
        """
        import httpx

        def test_ini(astrlite_server):
            url = astrlite_server.base_url + "/api/v1/chat"
            headers = {"X-API-Key": astrlite_server.api_key}
            response = httpx.post(url, headers=headers, json={"username": "u" * 40})
            assert response.status_code == 413
            response = httpx.get(url + "/sessions", headers=headers)
            assert response.status_code == 400
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.astrlite(platforms=[{"id": "box", "type": "outbox"}])
def test_outbox_records_what_is_sent(astrlite_server: AstrliteServer, client: httpx.Client) -> None:
    body = {"umo": "box:GroupMessage:ops", "message": [{"type": "plain", "text": "disk full"}]}
    assert client.post("/api/v1/im/message", json=body).json()["status"] == "ok"
    assert client.get("/api/v1/im/bots").json()["data"] == {"bot_ids": ["box"]}
    (recorded,) = astrlite_server.outbox("box")
    assert (recorded["umo"], recorded["message"]) == (
        "box:GroupMessage:ops",
        [{"type": "plain", "text": "disk full"}],
    )
    served = client.get("/api/v1/im/outbox", params={"platform_id": "box"}).json()["data"]
    assert served["messages"] == [recorded]
