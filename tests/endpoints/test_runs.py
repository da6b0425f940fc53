"""Runs decoupled from the connection and the session routes (P3, R1–R10), in both
profiles, over real sockets: resume after a disconnect (a snapshot, then every later
event exactly once), several followers, stop (G5), unknown and foreign runs, and the
session routes' answers and error strings in their observed order (with G1)."""

# ruff: noqa: E501  (request lines read best whole)

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.endpoints.test_chat import ISO_UTC, UUID, events
from tests.support.server import TEST_KEY, Running, running_server

HEADERS = {"X-API-Key": TEST_KEY}
PRINCIPAL = "api_key:static:1"  # the static test key's principal (G1, R7)
COUNT = "one two three four five six"
LONG = " ".join(f"w{i}" for i in range(60))

RULES = {
    "rules": [
        {"match": "hello", "reply": "Hello from fake LLM!", "usage": {"input": 12, "output": 4}},
        {"match": "count", "reply": COUNT, "delay_ms": 120},
        {"match": "long", "reply": LONG, "delay_ms": 100},
        {"match": "stall", "reply": "late", "delay_ms": 5000},
    ]
}


@pytest.fixture(scope="module", params=["4.22", "4.27"])
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("runs")
    (folder / "rules.json").write_text(json.dumps(RULES))
    config = {
        "provider": "rules",
        "providers": [
            {"id": "rules", "type": "scripted", "rules_file": str(folder / "rules.json")}
        ],
    }
    with running_server(config=config, compat=request.param) as running:
        yield running


def url(srv: Running, path: str) -> str:
    return srv.url + "/api/v1" + path


class Reader:
    """An SSE response read event by event (heartbeats skipped)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.iter_bytes()
        self._buffer = b""

    def next(self) -> dict[str, Any] | None:
        while b"\n\n" not in self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                assert not self._buffer
                return None
            self._buffer += chunk
        frame, self._buffer = self._buffer.split(b"\n\n", 1)
        if frame == b": heartbeat":
            return self.next()
        found: dict[str, Any] = events(frame + b"\n\n")[0]
        return found

    def until(self, kind: str) -> list[dict[str, Any]]:
        seen = []
        while (event := self.next()) is not None:
            seen.append(event)
            if event["type"] == kind:
                return seen
        raise AssertionError(f"no {kind} in {seen}")

    def rest(self) -> list[dict[str, Any]]:
        seen = []
        while (event := self.next()) is not None:
            seen.append(event)
        return seen


def start_chat(client: httpx.Client, srv: Running, body: dict[str, Any]) -> Reader:
    request = client.build_request("POST", url(srv, "/chat"), json=body, headers=HEADERS)
    return Reader(client.send(request, stream=True))


def resume(client: httpx.Client, srv: Running, run_id: str, **params: str) -> Reader:
    request = client.build_request(
        "GET", url(srv, f"/chat/runs/{run_id}/stream"), params=params, headers=HEADERS
    )
    response = client.send(request, stream=True)
    assert response.headers["content-type"].startswith("text/event-stream"), response.read()
    return Reader(response)


def text_of(content: dict[str, Any]) -> str:
    return "".join(p["text"] for p in content["message"] if p["type"] == "plain")


def deltas(stream: list[dict[str, Any]]) -> str:
    return "".join(e["data"] for e in stream if e["type"] == "plain" and e["streaming"])


def bot_rows(srv: Running, session_id: str) -> list[dict[str, Any]]:
    rows = srv.db.reader.execute(
        "SELECT content FROM history WHERE session_id = ? AND sender_id = 'bot' ORDER BY id",
        (session_id,),
    ).fetchall()
    return [json.loads(row[0]) for row in rows]


def answer(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def error_of(response: httpx.Response) -> str:
    reply = answer(response)
    assert reply["status"] == "error"
    return str(reply["message"])


# -- resume ------------------------------------------------------------------------------


def check_followed(stream: list[dict[str, Any]], run_id: str, session_id: str) -> None:
    """A resumed stream: the snapshot, then only later events; its text is whole."""
    snapshot = stream[0]
    assert snapshot["type"] == "run_snapshot"
    state = snapshot["data"]
    assert list(state) == [
        "run_id",
        "session_id",
        "llm_checkpoint_id",
        "status",
        "revision",
        "content",
    ]
    assert (state["run_id"], state["session_id"]) == (run_id, session_id)
    assert UUID.fullmatch(state["llm_checkpoint_id"]) and state["revision"] >= 1
    later = stream[1:]
    assert not {"session_id", "user_message_saved", "run_started", "run_snapshot"} & {
        e["type"] for e in later
    }
    assert text_of(state["content"]) + deltas(later) == COUNT  # nothing lost or repeated
    assert [e["type"] for e in later][-4:] == ["agent_stats", "complete", "message_saved", "end"]
    assert later[-3]["data"] == COUNT


def test_a_disconnected_client_resumes_the_run(srv: Running) -> None:
    with httpx.Client(timeout=10) as client:
        first = start_chat(client, srv, {"username": "alice", "message": "count"})
        seen = first.until("plain")
        session_id = seen[0]["session_id"]
        run_id = seen[-1]["message_id"]
        first.response.close()  # the client goes away mid-run
        stream = resume(client, srv, run_id, username="alice").rest()
    check_followed(stream, run_id, session_id)
    assert stream[-1] == {"type": "end", "data": "", "streaming": False, "message_id": run_id}
    assert text_of(bot_rows(srv, session_id)[-1]) == COUNT


def test_two_followers_and_the_starter_see_the_whole_run(srv: Running) -> None:
    with httpx.Client(timeout=10) as client:
        body = {"username": PRINCIPAL, "message": "count"}  # the G1 bridge
        first = start_chat(client, srv, body)
        seen = first.until("plain")
        session_id, run_id = seen[0]["session_id"], seen[-1]["message_id"]
        followers = [resume(client, srv, run_id), resume(client, srv, run_id)]
        started = seen + first.rest()
        streams = [follower.rest() for follower in followers]
    assert deltas(started) == COUNT and started[-1]["type"] == "end"
    for stream in streams:
        check_followed(stream, run_id, session_id)


def test_a_finished_run_resumes_briefly_then_is_unavailable(srv: Running) -> None:
    with httpx.Client(timeout=10) as client:
        stream = events(
            client.post(
                url(srv, "/chat"), json={"username": "alice", "message": "hello"}, headers=HEADERS
            ).content
        )
        run_id = stream[-1]["message_id"]
        late = resume(client, srv, run_id, username="alice").rest()
        assert [e["type"] for e in late] == ["run_snapshot", "end"]
        assert late[0]["data"]["status"] == "completed"
        assert text_of(late[0]["data"]["content"]) == "Hello from fake LLM!"
        chat = srv.services.chat
        linger, chat.run_linger = chat.run_linger, 0.0
        try:
            again = client.post(
                url(srv, "/chat"), json={"username": "alice", "message": "hello"}, headers=HEADERS
            )
            expired = events(again.content)[-1]["message_id"]
            gone = client.get(
                url(srv, f"/chat/runs/{expired}/stream"),
                params={"username": "alice"},
                headers=HEADERS,
            )
        finally:
            chat.run_linger = linger
    assert error_of(gone) == "Chat run is unavailable"


def test_unknown_and_foreign_runs_are_unavailable(srv: Running) -> None:
    other = srv.create_key(scopes=["chat"])["api_key"]
    with httpx.Client(timeout=10) as client:
        unknown = client.get(url(srv, "/chat/runs/nope/stream"), headers=HEADERS)
        assert error_of(unknown) == "Chat run is unavailable"
        assert unknown.content.startswith(b'{"status":"error","message":"Chat run is unavailable"')
        first = start_chat(client, srv, {"username": "alice", "message": "count"})
        run_id = first.until("plain")[-1]["message_id"]
        foreign = client.get(url(srv, f"/chat/runs/{run_id}/stream"), headers={"X-API-Key": other})
        assert error_of(foreign) == "Chat run is unavailable"
        named = client.get(
            url(srv, f"/chat/runs/{run_id}/stream"),
            headers={"X-API-Key": other},
            params={"username": "bob"},
        )
        assert error_of(named) == "Chat run is unavailable"
        first.rest()


# -- stop (R5, G5) -----------------------------------------------------------------------


def test_stop_saves_what_was_generated(srv: Running) -> None:
    with httpx.Client(timeout=10) as client:
        first = start_chat(client, srv, {"username": "alice", "message": "long"})
        seen = first.until("plain")
        session_id = seen[0]["session_id"]
        stopped = client.post(
            url(srv, f"/chat/sessions/{session_id}/stop"),
            params={"username": "alice"},
            headers=HEADERS,
        )
        assert answer(stopped) == {"status": "ok", "message": None, "data": {"stopped_count": 1}}
        tail = first.rest()
    kinds = [e["type"] for e in tail]
    assert kinds[-3:] == ["complete", "message_saved", "end"]
    partial = tail[-3]["data"]
    assert partial and LONG.startswith(partial) and partial != LONG
    assert partial == deltas(seen + tail)
    assert text_of(bot_rows(srv, session_id)[-1]) == partial
    with httpx.Client(timeout=10) as client:
        idle = client.post(
            url(srv, f"/chat/sessions/{session_id}/stop"),
            params={"username": "alice"},
            headers=HEADERS,
        )
    assert answer(idle)["data"] == {"stopped_count": 0}


def test_stop_before_any_output_saves_nothing(srv: Running) -> None:
    with httpx.Client(timeout=10) as client:
        first = start_chat(client, srv, {"username": "alice", "message": "stall"})
        seen = first.until("session_id")
        session_id = seen[0]["session_id"]
        if srv.services.profile.run_events:
            first.until("run_started")
        stopped = client.post(
            url(srv, f"/chat/sessions/{session_id}/stop"),
            params={"username": "alice"},
            headers=HEADERS,
        )
        assert answer(stopped)["data"] == {"stopped_count": 1}
        tail = first.rest()
    assert tail[-1]["type"] == "end"
    assert "message_saved" not in [e["type"] for e in tail]
    assert bot_rows(srv, session_id) == []


# -- session routes (P3, R6–R10) ---------------------------------------------------------


def test_new_session_is_owned_by_the_principal_or_the_named_user(srv: Running) -> None:
    with httpx.Client(timeout=10, headers=HEADERS) as client:
        made = answer(client.get(url(srv, "/chat/sessions/new")))["data"]
        assert list(made) == ["session_id", "platform_id"] and made["platform_id"] == "webchat"
        assert UUID.fullmatch(made["session_id"])
        detail = answer(client.get(url(srv, f"/chat/sessions/{made['session_id']}")))["data"]
        assert detail == {"history": [], "threads": [], "is_running": False, "active_runs": []}
        named = answer(
            client.get(
                url(srv, "/chat/sessions/new"), params={"username": "carol", "platform_id": "x"}
            )
        )
        assert named["data"]["platform_id"] == "x"
        listed = answer(client.get(url(srv, "/chat/sessions"), params={"username": "carol"}))
        assert named["data"]["session_id"] in [s["session_id"] for s in listed["data"]["sessions"]]


def test_session_detail_history_and_running_state(srv: Running) -> None:
    with httpx.Client(timeout=10, headers=HEADERS) as client:
        done = events(
            client.post(
                url(srv, "/chat"),
                json={"username": "dave", "session_id": "detail-1", "message": "hello"},
            ).content
        )
        first = start_chat(
            client, srv, {"username": "dave", "session_id": "detail-1", "message": "count"}
        )
        run_id = first.until("plain")[-1]["message_id"]
        running = answer(
            client.get(url(srv, "/chat/sessions/detail-1"), params={"username": "dave"})
        )["data"]
        first.rest()
        after = answer(
            client.get(url(srv, "/chat/sessions/detail-1"), params={"username": "dave"})
        )["data"]
    assert running["is_running"] is True
    [active] = running["active_runs"]
    assert (active["run_id"], active["session_id"], active["status"]) == (
        run_id,
        "detail-1",
        "running",
    )
    assert active["revision"] >= 1 and active["content"]["type"] == "bot"
    assert after["is_running"] is False and after["active_runs"] == []
    history = after["history"]
    assert [h["content"]["type"] for h in history] == ["user", "bot", "user", "bot"]
    for entry in history:
        assert list(entry) == [
            "id",
            "platform_id",
            "user_id",
            "sender_id",
            "sender_name",
            "content",
            "llm_checkpoint_id",
            "created_at",
            "updated_at",
        ]
        assert entry["user_id"] == "detail-1" and ISO_UTC.fullmatch(entry["created_at"])
    assert history[0]["llm_checkpoint_id"] == history[1]["llm_checkpoint_id"]
    assert history[1]["llm_checkpoint_id"] != history[2]["llm_checkpoint_id"]
    assert text_of(history[3]["content"]) == COUNT
    saved = next(e for e in done if e["type"] == "message_saved")["data"]
    assert saved["id"] == history[1]["id"]
    assert (
        active["llm_checkpoint_id"]
        == history[2]["llm_checkpoint_id"]
        == history[3]["llm_checkpoint_id"]
    )


def test_history_shows_the_newest_thousand_rows(srv: Running) -> None:
    sessions = srv.services.chat.sessions

    def fill(conn: Any) -> None:
        conn.execute(
            "INSERT INTO sessions (session_id, creator, created_at, updated_at) VALUES ('big', 'erin', 't', 't')"
        )
        conn.executemany(
            "INSERT INTO history (session_id, platform_id, sender_id, sender_name, content, created_at) VALUES ('big', 'webchat', 'bot', 'bot', ?, 't')",
            [
                (json.dumps({"type": "bot", "message": [{"type": "plain", "text": str(i)}]}),)
                for i in range(1005)
            ],
        )

    srv.portal.call(sessions.db.write, fill)
    history = answer(
        httpx.get(url(srv, "/chat/sessions/big"), params={"username": "erin"}, headers=HEADERS)
    )["data"]["history"]
    assert len(history) == 1000
    assert [text_of(h["content"]) for h in (history[0], history[-1])] == ["5", "1004"]


def test_session_errors_in_order(srv: Running) -> None:
    with httpx.Client(timeout=10, headers=HEADERS) as client:
        client.post(
            url(srv, "/chat"),
            json={"username": "frank", "session_id": "franks", "message": "hello"},
        ).read()
        for method, path in [
            ("GET", "/chat/sessions/{}"),
            ("PATCH", "/chat/sessions/{}"),
            ("DELETE", "/chat/sessions/{}"),
            ("POST", "/chat/sessions/{}/stop"),
        ]:
            body = {"display_name": "x"} if method == "PATCH" else None
            missing = client.request(method, url(srv, path.format("nope")), json=body)
            assert missing.content.startswith(
                b'{"status":"error","message":"Session nope not found"'
            )
            denied = client.request(method, url(srv, path.format("franks")), json=body)
            assert error_of(denied) == "Permission denied"  # a key chatting as frank is not frank
        assert (
            answer(client.get(url(srv, "/chat/sessions/franks"), params={"username": "frank"}))[
                "status"
            ]
            == "ok"
        )


def test_rename_moves_the_session_up_and_keeps_the_name_without_one(srv: Running) -> None:
    with httpx.Client(timeout=10, headers=HEADERS) as client:
        for session_id in ("g-1", "g-2"):
            client.post(
                url(srv, "/chat"),
                json={"username": "gina", "session_id": session_id, "message": "hello"},
            ).read()

        def listed() -> list[tuple[str, str | None]]:
            data = answer(client.get(url(srv, "/chat/sessions"), params={"username": "gina"}))[
                "data"
            ]
            return [(s["session_id"], s["display_name"]) for s in data["sessions"]]

        assert listed() == [("g-2", "hello"), ("g-1", "hello")]
        renamed = client.patch(
            url(srv, "/chat/sessions/g-1"), json={"display_name": "Trip", "username": "gina"}
        )
        assert answer(renamed) == {"status": "ok", "message": None, "data": {}}
        assert listed() == [("g-1", "Trip"), ("g-2", "hello")]
        client.patch(url(srv, "/chat/sessions/g-2"), params={"username": "gina"}, json={}).read()
        assert listed() == [("g-2", "hello"), ("g-1", "Trip")]
        bad = client.patch(
            url(srv, "/chat/sessions/g-2"), params={"username": "gina"}, json={"display_name": 5}
        )
    if srv.services.profile.validation_422:
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "display_name"]
    else:
        assert error_of(bad) == "Invalid key: display_name"


def test_delete_and_batch_delete(srv: Running) -> None:
    with httpx.Client(timeout=10, headers=HEADERS) as client:
        for session_id in ("h-1", "h-2", "h-3"):
            client.post(
                url(srv, "/chat"),
                json={"username": "hank", "session_id": session_id, "message": "hello"},
            ).read()
        client.post(
            url(srv, "/chat"), json={"username": "ivy", "session_id": "ivys", "message": "hello"}
        ).read()
        gone = client.delete(url(srv, "/chat/sessions/h-1"), params={"username": "hank"})
        assert answer(gone) == {"status": "ok", "message": None, "data": {}}
        again = client.delete(url(srv, "/chat/sessions/h-1"), params={"username": "hank"})
        assert error_of(again) == "Session h-1 not found"
        assert bot_rows(srv, "h-1") == []
        batch = client.post(
            url(srv, "/chat/sessions/batch-delete"),
            json={"session_ids": ["h-2", "ivys", "nope", "h-3"], "username": "hank"},
        )
        assert answer(batch)["data"] == {
            "deleted_count": 2,
            "failed_count": 2,
            "failed_items": [
                {"session_id": "ivys", "reason": "permission denied"},
                {"session_id": "nope", "reason": "not found"},
            ],
        }
        listed = answer(client.get(url(srv, "/chat/sessions"), params={"username": "hank"}))["data"]
        assert listed["total"] == 0
        empty = client.post(url(srv, "/chat/sessions/batch-delete"), json={"session_ids": []})
        assert error_of(empty) == "Missing or invalid key: session_ids"
        missing = client.post(url(srv, "/chat/sessions/batch-delete"), json={})
    if srv.services.profile.validation_422:
        assert missing.status_code == 422
        assert missing.json()["detail"][0] == {
            "type": "missing",
            "loc": ["body", "session_ids"],
            "msg": "Field required",
            "input": {},
        }
    else:
        assert error_of(missing) == "Missing or invalid key: session_ids"


def test_deleting_a_running_session_ends_its_stream(srv: Running) -> None:
    with httpx.Client(timeout=10, headers=HEADERS) as client:
        first = start_chat(client, srv, {"username": "jay", "session_id": "j-1", "message": "long"})
        first.until("plain")
        deleted = client.delete(url(srv, "/chat/sessions/j-1"), params={"username": "jay"})
        assert answer(deleted)["status"] == "ok"
        assert first.rest()[-1]["type"] == "end"  # G5
        detail = client.get(url(srv, "/chat/sessions/j-1"), params={"username": "jay"})
    assert error_of(detail) == "Session j-1 not found"
    assert bot_rows(srv, "j-1") == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/chat/threads"),
        ("GET", "/chat/threads/t1"),
        ("GET", "/chat/projects"),
        ("PATCH", "/chat/sessions/s/messages/1"),
        ("POST", "/chat/sessions/s/messages/1/regenerate"),
        ("GET", "/config-profiles"),
        ("GET", "/api-keys"),
    ],
)
def test_routes_not_built_are_404(srv: Running, method: str, path: str) -> None:
    response = httpx.request(method, url(srv, path), headers=HEADERS)
    assert response.status_code == 404


def test_wrong_methods_on_templates_are_405(srv: Running) -> None:
    response = httpx.put(url(srv, "/chat/sessions/abc"), headers=HEADERS)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH, DELETE, HEAD, OPTIONS"
    assert httpx.get(url(srv, "/chat/sessions/abc/stop"), headers=HEADERS).status_code == 405
    assert httpx.get(url(srv, "/chat/sessions/abc")).status_code == 401  # a key first


def test_the_session_routes_need_the_chat_scope(srv: Running) -> None:
    im_only = srv.create_key(scopes=["im"])["api_key"]
    response = httpx.get(url(srv, "/chat/sessions/new"), headers={"X-API-Key": im_only})
    assert response.status_code == 403
