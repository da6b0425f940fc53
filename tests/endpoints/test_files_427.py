"""The AstrBot 4.27 file routes over real sockets (K4): POST /api/v1/files,
GET /api/v1/files/{id} and /content, GET /api/v1/files/content?filename= (how a client
fetches a bot's `[IMAGE]<name>`), and DELETE /api/v1/files/{id}, which really deletes
the row and the file (G3), each only for the key that owns the attachment (F11)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import TEST_KEY, Running, running_server

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
NOT_FOUND = {"status": "error", "message": "Attachment not found", "data": None}
ACCESS = {"status": "error", "message": "File access error", "data": None}
AUTH = {"X-API-Key": TEST_KEY}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("bot-media")
    picture = folder / "sun.png"
    picture.write_bytes(PNG)
    rules = {
        "rules": [
            {
                "match": "picture",
                "reply": "pic:",
                "attachment": {"path": str(picture), "kind": "image", "filename": "sun.png"},
            }
        ]
    }
    (folder / "rules.json").write_text(json.dumps(rules))
    providers = [
        {"id": "rules", "type": "scripted", "rules_file": str(folder / "rules.json")},
        {"id": "echo", "type": "echo"},
    ]
    with running_server(config={"provider": "rules", "providers": providers}) as running:
        yield running


@pytest.fixture(scope="module")
def other_key(srv: Running) -> str:
    key: str = srv.create_key(scopes=["file", "chat"])["api_key"]
    return key


def upload(
    srv: Running, data: bytes, name: str = "notes.txt", key: str = TEST_KEY
) -> dict[str, Any]:
    response = httpx.post(
        srv.url + "/api/v1/files",
        headers={"X-API-Key": key},
        files={"file": (name, data, "text/plain")},
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["status"] == "ok", body
    data_: dict[str, Any] = body["data"]
    return data_


def get(srv: Running, path: str, key: str = TEST_KEY, **kwargs: Any) -> httpx.Response:
    return httpx.get(
        srv.url + path, headers={"X-API-Key": key, **kwargs.pop("headers", {})}, **kwargs
    )


def delete(srv: Running, attachment_id: str, key: str = TEST_KEY) -> httpx.Response:
    return httpx.delete(srv.url + f"/api/v1/files/{attachment_id}", headers={"X-API-Key": key})


def stored_path(srv: Running, attachment_id: str) -> Path | None:
    with sqlite3.connect(srv.data_dir / "astrlite.db") as conn:
        row = conn.execute(
            "SELECT path FROM attachments WHERE attachment_id = ?", (attachment_id,)
        ).fetchone()
    return None if row is None else srv.data_dir / row[0]


def stored_name(srv: Running, attachment_id: str) -> str:
    path = stored_path(srv, attachment_id)
    assert path is not None
    return path.name


def test_upload_on_files_is_the_upload_of_file(srv: Running) -> None:
    created = upload(srv, b"hello!", "../../evil.txt")
    assert list(created) == ["attachment_id", "filename", "type", "size", "mime_type"]
    assert (created["filename"], created["type"], created["size"]) == ("evil.txt", "file", 6)
    legacy = get(srv, "/api/v1/file", params={"attachment_id": created["attachment_id"]})
    assert legacy.content == b"hello!"


@pytest.mark.parametrize("suffix", ["", "/content"])
def test_download_by_id(srv: Running, suffix: str) -> None:
    created = upload(srv, b"by id " + suffix.encode())
    response = get(srv, f"/api/v1/files/{created['attachment_id']}{suffix}")
    assert response.status_code == 200
    assert response.content == b"by id " + suffix.encode()
    legacy = get(srv, "/api/v1/file", params={"attachment_id": created["attachment_id"]})
    for name in ("content-type", "etag", "content-disposition", "x-content-type-options"):
        assert response.headers[name] == legacy.headers[name]
    ranged = get(
        srv, f"/api/v1/files/{created['attachment_id']}{suffix}", headers={"Range": "bytes=0-3"}
    )
    assert (ranged.status_code, ranged.content) == (206, b"by i")
    assert ranged.headers["content-range"] == f"bytes 0-3/{len(response.content)}"
    head = httpx.head(srv.url + f"/api/v1/files/{created['attachment_id']}{suffix}", headers=AUTH)
    assert (head.status_code, head.content) == (200, b"")


def test_unknown_ids_and_paths(srv: Running) -> None:
    assert get(srv, "/api/v1/files/no-such-id").json() == NOT_FOUND
    assert get(srv, "/api/v1/files/no-such-id/content").json() == NOT_FOUND
    for path in ("/api/v1/files/", "/api/v1/files//content", "/api/v1/files/a/b"):
        response = get(srv, path)
        assert (response.status_code, response.json()["message"]) == (404, "Not found"), path


def test_another_keys_attachment_is_not_found(srv: Running, other_key: str) -> None:
    created = upload(srv, b"mine")
    attachment_id = created["attachment_id"]
    assert get(srv, f"/api/v1/files/{attachment_id}", other_key).json() == NOT_FOUND
    assert get(srv, f"/api/v1/files/{attachment_id}/content", other_key).json() == NOT_FOUND
    name = stored_name(srv, attachment_id)
    by_name = get(srv, "/api/v1/files/content", other_key, params={"filename": name})
    assert by_name.json() == ACCESS
    assert delete(srv, attachment_id, other_key).json() == NOT_FOUND
    assert get(srv, f"/api/v1/files/{attachment_id}").content == b"mine"  # still there


def test_delete_removes_row_and_file(srv: Running) -> None:
    created = upload(srv, b"to be deleted")
    attachment_id = created["attachment_id"]
    path = stored_path(srv, attachment_id)
    assert path is not None and path.read_bytes() == b"to be deleted"
    response = delete(srv, attachment_id)
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ok", "message": None, "data": {"attachment_id": attachment_id}},
    )
    assert not path.exists() and stored_path(srv, attachment_id) is None
    assert get(srv, f"/api/v1/files/{attachment_id}").json() == NOT_FOUND
    assert get(srv, "/api/v1/file", params={"attachment_id": attachment_id}).json() == NOT_FOUND
    assert get(srv, "/api/v1/files/content", params={"filename": path.name}).json() == ACCESS
    assert delete(srv, attachment_id).json() == NOT_FOUND  # already gone


def test_delete_with_honest_statuses() -> None:
    with running_server(http_errors=True) as srv:
        assert delete(srv, "no-such-id").status_code == 404
        missing = get(srv, "/api/v1/files/content", params={"filename": "nope.png"})
        assert (missing.status_code, missing.json()["message"]) == (404, "File access error")


def test_a_download_under_way_survives_the_delete(srv: Running) -> None:
    data = bytes(range(256)) * 16 * 1024  # 4 MiB: several reads
    attachment_id = upload(srv, data, "big.bin")["attachment_id"]
    with (
        httpx.Client() as client,
        client.stream("GET", srv.url + f"/api/v1/files/{attachment_id}", headers=AUTH) as response,
    ):
        chunks = response.iter_bytes()
        received = next(chunks)
        assert delete(srv, attachment_id).json()["status"] == "ok"
        received += b"".join(chunks)
    assert received == data


def test_a_deleted_attachment_in_history_does_not_break_the_session(srv: Running) -> None:
    attachment_id = upload(srv, PNG, "cat.png")["attachment_id"]
    body = {
        "username": "alice",
        "session_id": "deleted-media",
        "selected_provider": "echo",
        "message": [
            {"type": "plain", "text": "look"},
            {"type": "image", "attachment_id": attachment_id},
        ],
    }
    first = httpx.post(srv.url + "/api/v1/chat", headers=AUTH, json=body)
    assert '"type": "end"' in first.text
    assert delete(srv, attachment_id).json()["status"] == "ok"
    again = {**body, "message": "still there?"}
    second = httpx.post(srv.url + "/api/v1/chat", headers=AUTH, json=again)
    assert "Echo: still there?" in second.text and '"type": "end"' in second.text


# -- by stored name ----------------------------------------------------------------------


def test_a_bot_image_is_fetched_by_the_name_in_its_event(srv: Running, other_key: str) -> None:
    response = httpx.post(
        srv.url + "/api/v1/chat", headers=AUTH, json={"username": "alice", "message": "picture"}
    )
    events = [
        json.loads(line[6:]) for line in response.text.split("\n") if line.startswith("data: ")
    ]
    image = next(e for e in events if e["type"] == "image")
    name = image["data"].removeprefix("[IMAGE]")
    fetched = get(srv, "/api/v1/files/content", params={"filename": name})
    assert fetched.status_code == 200
    assert fetched.content == PNG
    assert fetched.headers["content-type"] == "image/png"
    # Another key gets nothing for the same name (F11).
    assert get(srv, "/api/v1/files/content", other_key, params={"filename": name}).json() == ACCESS


@pytest.mark.parametrize("prefix", ["", "../", "..\\", "attachments/2026/01/01/", "/etc/"])
def test_only_the_last_component_of_the_name_counts(srv: Running, prefix: str) -> None:
    attachment_id = upload(srv, b"named")["attachment_id"]
    name = stored_name(srv, attachment_id)
    response = get(srv, "/api/v1/files/content", params={"filename": prefix + name})
    assert response.content == b"named"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "Missing key: filename"),
        ({"filename": ""}, "Missing key: filename"),
        ({"filename": "nope.png"}, "File access error"),
        ({"filename": "../config.json"}, "File access error"),
        ({"filename": "config.json"}, "File access error"),
        ({"filename": "astrlite.db"}, "File access error"),
    ],
)
def test_by_name_errors(srv: Running, params: dict[str, str], expected: str) -> None:
    response = get(srv, "/api/v1/files/content", params=params)
    assert (response.status_code, response.json()) == (
        200,
        {"status": "error", "message": expected, "data": None},
    )


def test_the_name_lookup_uses_the_index(srv: Running) -> None:
    with sqlite3.connect(srv.data_dir / "astrlite.db") as conn:
        from astrlite.files.attachments import STORED_NAME_SQL

        plan = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM attachments WHERE {STORED_NAME_SQL} = ?"
            " AND owner_key_id = ?",
            ("x.png", "k"),
        ).fetchall()
    assert "attachments_by_stored_name" in " ".join(str(row) for row in plan)


@pytest.mark.parametrize(
    ("compat", "body"),
    [
        ("4.22", b'{"status":"error","message":"Range not satisfiable","data":null}\n'),
        ("4.27", b'{"status":"error","message":"Range not satisfiable"}'),
    ],
)
def test_an_unsatisfiable_range_answers_in_the_running_profiles_envelope(
    compat: str, body: bytes
) -> None:
    with running_server(compat=compat) as srv:
        attachment_id = upload(srv, b"0123456789", "digits.txt")["attachment_id"]
        response = get(srv, f"/api/v1/files/{attachment_id}", headers={"Range": "bytes=10-"})
        assert (response.status_code, response.headers["content-range"]) == (416, "bytes */10")
        assert response.content == body
