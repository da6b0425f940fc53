"""astrlite inside your own tests: a real server on 127.0.0.1 with an ephemeral port and
a fresh data directory, started in milliseconds, on its own thread and event loop (so
any caller, sync or async, on any event loop, can use it).

    from astrlite.testing import serve

    with serve(rules=[{"match": "hi", "reply": "Hello!"}]) as server:
        httpx.post(server.base_url + "/api/v1/chat", headers={"X-API-Key": server.api_key},
                   json={"username": "alice", "message": "hi"})

Leaving the block stops the server and removes its data directory.
"""

from __future__ import annotations

import contextvars
import dataclasses
import http.client
import json
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread
import anyio.to_thread

from astrlite import sources
from astrlite.compat import parse_profile
from astrlite.http.server import Server
from astrlite.options import Options
from astrlite.principal import VALID_SCOPES
from astrlite.runtime import Runtime, start
from astrlite.store import keys
from astrlite.store.db import administer

SCRIPTED_PROVIDER = {"id": "scripted", "type": "scripted", "rules_file": "rules.json"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a test server starts with; restart(**changes) replaces any of these."""

    config: dict[str, Any] | None = None  # the default config (config.json)
    configs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # id -> body
    rules: list[dict[str, Any]] | dict[str, Any] | None = None  # scripted rules
    platforms: list[dict[str, Any]] | None = None
    http_errors: bool = False
    # The AstrBot version spoken on the wire ("4.22", the seed, or "4.27"), as --compat.
    compat: str = "4.22"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # any serve option
    # A fixed clock (2026-01-01T00:00:00+00:00) and ids from a generator seeded with
    # `seed`, so that two runs of the same test give byte-identical transcripts.
    deterministic: bool = False
    seed: int = 0

    def source(self) -> sources.Source:
        return sources.DeterministicSource(self.seed) if self.deterministic else sources.SYSTEM

    def default_config(self) -> dict[str, Any]:
        config = dict(self.config or {})
        if self.rules is not None and "providers" not in config:
            config["providers"] = [SCRIPTED_PROVIDER, {"id": "echo", "type": "echo"}]
            config.setdefault("provider", "scripted")
        if self.platforms is not None:
            config["platforms"] = self.platforms
        return config


class ServerThread:
    """A Server on its own thread and event loop, with the given time and id source."""

    def __init__(self, server: Server, source: sources.Source = sources.SYSTEM) -> None:
        self.server = server
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self.portal = self._portal_cm.__enter__()
        self._future = self.portal.start_task_soon(self._serve, server, source)

    @staticmethod
    async def _serve(server: Server, source: sources.Source) -> None:
        sources.current.set(source)  # inherited by every task and thread the server starts
        await server.serve()

    def stop(self) -> None:
        """Graceful shutdown, then the thread ends."""
        try:
            self.portal.call(self.server.stop)
            self._future.result()
        finally:
            self._portal_cm.__exit__(None, None, None)


class AstrliteServer:
    """A running test server: `base_url`, `api_key` (all scopes), `data_dir`."""

    def __init__(self, data_dir: Path, settings: Settings, *, owns_data_dir: bool) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.api_key = "abk_" + secrets.token_urlsafe(32)
        self._owns_data_dir = owns_data_dir
        self._port = 0
        self._runtime: Runtime | None = None
        self._thread: ServerThread | None = None
        self._source = settings.source()
        self.base_url = ""

    # -- life cycle -------------------------------------------------------------------

    def _write_files(self) -> None:
        settings = self.settings
        (self.data_dir / "config.json").write_text(json.dumps(settings.default_config()))
        if settings.rules is not None:
            rules = (
                settings.rules if isinstance(settings.rules, dict) else {"rules": settings.rules}
            )
            (self.data_dir / "rules.json").write_text(json.dumps(rules))
        folder = self.data_dir / "configs"
        shutil.rmtree(folder, ignore_errors=True)
        if settings.configs:
            folder.mkdir()
            for config_id, body in settings.configs.items():
                (folder / f"{config_id}.json").write_text(json.dumps(body))

    def start(self) -> AstrliteServer:
        self._write_files()
        options = Options(
            **{
                "host": "127.0.0.1",
                "port": self._port,
                "data_dir": str(self.data_dir),
                "access_log": False,
                "http_errors": self.settings.http_errors,
                "compat": parse_profile(self.settings.compat),
                "shutdown_grace": 1.0,
                **self.settings.options,
            }
        )
        self._runtime = start(options, {"ASTRLITE_API_KEY": self.api_key})
        self._port = self._runtime.server.sock.getsockname()[1]
        self.base_url = self._runtime.url
        self._source = self.settings.source()
        self._thread = ServerThread(self._runtime.server, self._source)
        return self

    def stop(self) -> None:
        """Stop serving (the data directory stays until the block is left)."""
        if self._thread is None or self._runtime is None:
            return
        try:
            self._thread.stop()
        finally:
            self._runtime.close()
            self._thread = self._runtime = None

    def restart(self, **changes: Any) -> None:
        """Apply new settings (same fields as serve()); the data and the port are kept."""
        self.stop()
        self.settings = dataclasses.replace(self.settings, **changes)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------

    def create_key(
        self,
        scopes: list[str] | None = None,
        *,
        name: str | None = None,
        expires_in_days: int | None = None,
    ) -> str:
        """A new stored key with these scopes (default: all); returns the raw key."""
        context = contextvars.copy_context()
        context.run(sources.current.set, self._source)  # seeded key ids when deterministic
        created = context.run(
            administer,
            self.data_dir,
            lambda conn: keys.create(
                conn,
                name=name,
                scopes=list(VALID_SCOPES) if scopes is None else scopes,
                expires_in_days=expires_in_days,
                created_by="testing",
            ),
        )
        api_key: str = created["api_key"]
        return api_key

    def outbox(self, platform_id: str | None = None) -> list[dict[str, Any]]:
        """Messages sent to `outbox` platforms (umo, parts, time), oldest first."""
        if self._runtime is None:
            return []
        return self._runtime.services.platforms.outbox.messages(platform_id)

    def upload(
        self,
        content: bytes | Path,
        filename: str | None = None,
        *,
        content_type: str = "application/octet-stream",
        api_key: str | None = None,
    ) -> dict[str, Any]:
        """Upload an attachment through POST /api/v1/file; returns the response's data."""
        if isinstance(content, Path):
            filename = filename or content.name
            content = content.read_bytes()
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{filename or "file"}"\r\nContent-Type: {content_type}\r\n\r\n'
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        answer = self._request(
            "POST",
            "/api/v1/file",
            body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
            api_key,
        )
        if answer.get("status") != "ok":
            raise RuntimeError(f"upload failed: {answer.get('message')}")
        data: dict[str, Any] = answer["data"]
        return data

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        api_key: str | None,
    ) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=30)
        try:
            conn.request(method, path, body, {**headers, "X-API-Key": api_key or self.api_key})
            answer: dict[str, Any] = json.loads(conn.getresponse().read())
            return answer
        finally:
            conn.close()


def _new(settings: Settings, data_dir: str | Path | None) -> AstrliteServer:
    owns = data_dir is None
    folder = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="astrlite-"))
    folder.mkdir(parents=True, exist_ok=True)
    return AstrliteServer(folder, settings, owns_data_dir=owns)


@contextmanager
def serve(*, data_dir: str | Path | None = None, **settings: Any) -> Iterator[AstrliteServer]:
    """Start a test server (see Settings for what can be given); stop it on leaving."""
    server = _new(Settings(**settings), data_dir)
    try:
        yield server.start()
    finally:
        server.close()


@asynccontextmanager
async def serve_async(
    *, data_dir: str | Path | None = None, **settings: Any
) -> AsyncIterator[AstrliteServer]:
    """The async form: start and stop run on a worker thread, never blocking your loop."""
    server = _new(Settings(**settings), data_dir)
    try:
        yield await anyio.to_thread.run_sync(server.start)
    finally:
        await anyio.to_thread.run_sync(server.close)
