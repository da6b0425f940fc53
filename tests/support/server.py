"""Run a real astrlite server on 127.0.0.1 in a background thread, for socket tests."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread

from astrlite.http.router import RouteTable
from astrlite.http.server import Server
from astrlite.options import Options
from astrlite.runtime import Runtime, start
from astrlite.services import Services
from astrlite.store import keys
from astrlite.store.db import Database, administer
from astrlite.testing import ServerThread

TEST_KEY = "abk_test_key_with_all_scopes_0123456789abcdefghij"


@dataclasses.dataclass
class Running:
    url: str
    host: str
    port: int
    runtime: Runtime
    portal: anyio.from_thread.BlockingPortal

    @property
    def server(self) -> Server:
        return self.runtime.server

    @property
    def services(self) -> Services:
        return self.runtime.services

    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def data_dir(self) -> Path:
        return self.runtime.data_dir

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def key_admin(self, command: str, **kwargs: Any) -> Any:
        """Manage keys through a separate connection, as `astrlite keys` does."""
        return administer(self.data_dir, lambda conn: getattr(keys, command)(conn, **kwargs))

    def create_key(self, scopes: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.key_admin("create", scopes=scopes, **kwargs)
        return created


@contextlib.contextmanager
def running_server(
    extra_routes: RouteTable | None = None,
    *,
    config: dict[str, Any] | None = None,
    extra_configs: dict[str, dict[str, Any]] | None = None,
    static_key: str | None = TEST_KEY,
    **option_changes: Any,
) -> Iterator[Running]:
    with tempfile.TemporaryDirectory(prefix="astrlite-test-") as tmp:
        # One level down, so that what escapes the data directory lands in a folder of
        # this test's own, where a test can look for it.
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        if config is not None:
            (data_dir / "config.json").write_text(json.dumps(config))
        for config_id, body in (extra_configs or {}).items():
            (data_dir / "configs").mkdir(exist_ok=True)
            (data_dir / "configs" / f"{config_id}.json").write_text(json.dumps(body))
        options = dataclasses.replace(Options(port=0, data_dir=str(data_dir)), **option_changes)
        environ = {"ASTRLITE_API_KEY": static_key} if static_key else {}
        with start(options, environ, extra_routes=extra_routes) as runtime:
            host, port = runtime.server.sock.getsockname()[:2]
            thread = ServerThread(runtime.server)
            try:
                yield Running(runtime.url, host, port, runtime, thread.portal)
            finally:
                thread.stop()
