"""Run a real astrlite server on 127.0.0.1 in a background thread, for socket tests."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import Iterator
from typing import Any

import anyio.from_thread

from astrlite.app import App
from astrlite.auth import Principal
from astrlite.options import Options
from astrlite.routes import build_table
from astrlite.routing import Handler, Router
from astrlite.server import Server, bind

TEST_KEY = "abk_test_key_with_all_scopes_0123456789abcdefghij"


@dataclasses.dataclass
class Running:
    url: str
    host: str
    port: int
    server: Server
    portal: anyio.from_thread.BlockingPortal

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)


@contextlib.contextmanager
def running_server(
    extra_routes: dict[str, dict[str, Handler]] | None = None,
    keys: dict[str, Principal] | None = None,
    **option_changes: Any,
) -> Iterator[Running]:
    options = dataclasses.replace(Options(port=0, access_log=True), **option_changes)
    table = build_table()
    for path, methods in (extra_routes or {}).items():
        table.setdefault(path, {}).update(methods)
    all_keys = {TEST_KEY: Principal("test", frozenset({"*"}))} if keys is None else keys
    app = App(options, Router(table), all_keys.get)
    server = Server(app, bind("127.0.0.1", 0))
    host, port = server.sock.getsockname()[:2]
    with anyio.from_thread.start_blocking_portal() as portal:
        future = portal.start_task_soon(server.serve)
        try:
            yield Running(server.url, host, port, server, portal)
        finally:
            portal.call(server.stop)
            future.result(timeout=30)
