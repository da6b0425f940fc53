"""The one route table: every entry is public or needs exactly one known scope."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from astrlite.endpoints.routes import ROUTES, build_table, later
from astrlite.http.router import Route
from astrlite.principal import VALID_SCOPES
from tests.support.server import TEST_KEY, running_server


async def nothing(request: object) -> None:
    raise AssertionError("never called")


def test_every_route_is_public_or_has_exactly_one_known_scope() -> None:
    for entry in ROUTES:
        assert entry.public != (entry.scope is not None), entry
        assert entry.public or entry.scope in VALID_SCOPES, entry
    with running_server() as srv:
        table = build_table(srv.services)
    routes = [route for methods in table.values() for route in methods.values()]
    assert routes and all(route.public != (route.scope is not None) for route in routes)


def test_each_path_and_method_is_listed_once() -> None:
    keys = [(entry.method, entry.path) for entry in ROUTES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(("scope", "public"), [(None, False), ("chat", True)])
def test_a_route_without_exactly_one_policy_is_refused(scope: str | None, public: bool) -> None:
    with pytest.raises(ValueError, match="either public or needs exactly one scope"):
        Route(nothing, scope, public)  # type: ignore[arg-type]


def test_every_later_entry_names_a_factory() -> None:
    deferred = [entry.factory for entry in ROUTES if isinstance(entry.factory, later)]
    assert deferred
    assert all(callable(factory.resolve()) for factory in deferred)


DEFERRED = (
    "astrlite.endpoints.chat",
    "astrlite.endpoints.chat_ws",
    "astrlite.endpoints.files",
    "astrlite.endpoints.sessions",
    "astrlite.endpoints.im_message",
    "astrlite.http.websocket",
    "astrlite.outbound.client",  # an openai provider's client: made when it first sends
    # The chat runner and what only a turn needs: made on the first chat request.
    "astrlite.chat.runner",
    "astrlite.chat.turn",
    "astrlite.store.chat",
    "astrlite.providers.base",
    "astrlite.providers.openai",  # the provider: its entry is checked at start
    "astrlite.im.webchat",  # made on its first send
    "astrlite.im.outgoing_message",
    "astrlite.store.sweeper",  # only with --retention-days or --max-attachment-bytes
    "astrlite.files.attachments",  # the attachment store: made on first use
    "astrlite.files.ranges",
    "astrlite.store.dbcli",  # `astrlite db`
    "importlib.resources",  # the page's files: read when first asked for
)
OPENAI_CONFIG = {
    "provider": "up",
    "providers": [
        {
            "id": "up",
            "type": "openai",
            "base_url": "https://api.example.invalid/v1",
            "api_key": "sk-test",
            "model": "m",
        }
    ],
}
HEADERS = {"Authorization": f"Bearer {TEST_KEY}"}
PROBE = """
import json, sys
from astrlite.options import Options
from astrlite.runtime import start
with start(Options(port=0, data_dir=sys.argv[1]), {}):
    print(json.dumps(sorted(sys.modules)))
"""


def test_a_started_server_has_not_imported_what_only_later_routes_need(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(OPENAI_CONFIG))
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(probe.stdout))
    assert {"astrlite.endpoints.im", "astrlite.providers.openai_config"} <= loaded  # it works
    assert not loaded & set(DEFERRED), loaded & set(DEFERRED)


PROBE_SERVED = """
import json, socket, sys
import anyio
from astrlite.options import Options
from astrlite.runtime import start

data_dir, key = sys.argv[1:]
ASK = "\\r\\n".join(
    ["GET /api/v1/im/bots HTTP/1.1", "Host: t", f"X-API-Key: {key}", "Connection: close", "", ""]
)

def ask(address):
    with socket.socket() as sock:  # not create_connection: its getaddrinfo loads the idna codec
        sock.connect(address)
        sock.sendall(ASK.encode())
        return b"".join(iter(lambda: sock.recv(65536), b""))

async def main(runtime):
    async with anyio.create_task_group() as group:
        group.start_soon(runtime.server.serve)
        answer = await anyio.to_thread.run_sync(ask, runtime.server.sock.getsockname()[:2])
        loaded = sorted(sys.modules)
        runtime.server.stop()
    print(json.dumps({"status": answer.split(b" ", 2)[1].decode(), "modules": loaded}))

with start(Options(port=0, data_dir=data_dir), {"ASTRLITE_API_KEY": key}) as runtime:
    anyio.run(main, runtime)
"""


def test_the_first_authenticated_answer_loads_no_chat_runner_nor_provider(tmp_path: Path) -> None:
    # Issue 17: with an openai provider configured, a served server has answered its first
    # authenticated request without loading what only a chat turn, a send or an upload needs.
    (tmp_path / "config.json").write_text(json.dumps(OPENAI_CONFIG))
    probe = subprocess.run(
        [sys.executable, "-c", PROBE_SERVED, str(tmp_path), TEST_KEY],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    served = json.loads(probe.stdout)
    assert served["status"] == "200"
    loaded = set(served["modules"])
    assert {"astrlite.endpoints.im", "astrlite.http.connection"} <= loaded  # it served
    assert not loaded & set(DEFERRED), loaded & set(DEFERRED)
    # Nor what only a misspelt option or `--help` needs: shutil (with bz2 and lzma),
    # the idna codec (with unicodedata), difflib.
    assert not loaded & {"shutil", "bz2", "lzma", "encodings.idna", "unicodedata", "difflib"}


def test_a_later_route_answers_on_first_use() -> None:
    with running_server() as srv, httpx.Client(base_url=srv.url) as client:
        sessions = client.get("/api/v1/chat/sessions", headers=HEADERS)
        assert sessions.status_code == 200, sessions.text
        again = client.get("/api/v1/chat/sessions", headers=HEADERS)
        assert again.json() == sessions.json()
