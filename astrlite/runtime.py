"""Assembling a server: the data directory, database, configs, keys, services, the route
table and a bound socket. The CLI, the test fixture and the test suite all start here."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from astrlite import configs
from astrlite.background import Background
from astrlite.chat.admins import AdminIds
from astrlite.compat import PROFILES
from astrlite.endpoints.routes import build_table
from astrlite.files import prepare_incoming
from astrlite.http.app import App
from astrlite.http.cors import parse_origins
from astrlite.http.router import Router, RouteTable
from astrlite.http.server import Server, bind
from astrlite.im.platforms import Platforms
from astrlite.operations.metrics import Metrics
from astrlite.options import Options
from astrlite.providers.registry import ProviderSet
from astrlite.services import OnFirstUse, Services
from astrlite.store import keys
from astrlite.store.db import Database, StoreError
from astrlite.store.health import HealthProbe

if TYPE_CHECKING:
    from astrlite.chat.runner import ChatService
    from astrlite.files.attachments import AttachmentStore
    from astrlite.outbound.registry import ClientRegistry


class StartupError(Exception):
    """The server cannot start; the message says what to fix."""


@dataclass
class Runtime:
    """A server bound to its socket with everything it serves; close() releases it all.

    Serving is the caller's: `await runtime.server.serve()` on the loop of its choice.
    """

    services: Services
    server: Server
    db: Database
    data_dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.server.sock.close()
        self.db.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def prepare_data_dir(path: Path) -> Path:
    """Create the data directory and prove it is writable, with a clear error if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.urandom(16).hex()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise StartupError(
            f"cannot write to data directory {path}: {error.strerror}; "
            "choose another with --data-dir"
        ) from None
    return path


def static_keys(options: Options, environ: Mapping[str, str]) -> list[str]:
    found = [
        keys.check_static_key(key.strip(), "ASTRLITE_API_KEY")
        for key in environ.get("ASTRLITE_API_KEY", "").split(",")
        if key.strip()
    ]
    if options.api_key_file:
        found += keys.read_key_file(Path(options.api_key_file))
    return found


def start(
    options: Options,
    environ: Mapping[str, str] | None = None,
    *,
    extra_routes: RouteTable | None = None,
) -> Runtime:
    """Open everything the options name and bind the listening socket.

    Raises StartupError with a message that says what to fix.
    """
    environ = os.environ if environ is None else environ
    data_dir = prepare_data_dir(Path(options.data_dir))
    profile = PROFILES[options.compat]
    try:
        extra_keys = static_keys(options, environ)
        config_set = configs.load(data_dir, profile.default_admins_id)
        background = Background()
        clients = _client_registry(background)
        providers = ProviderSet.build(config_set, data_dir, clients)
        db = Database(data_dir)
    except (ValueError, StoreError) as error:  # bad keys, configs or provider entries
        raise StartupError(str(error)) from None
    try:
        services = _services(
            options, data_dir, db, config_set, providers, clients, background, extra_keys
        )
        app = App(
            options,
            Router({**build_table(services), **(extra_routes or {})}),
            services.keys,
            touch=services.keys.touch_if_due,
            background=services.background,
            metrics=services.metrics,
            cors=parse_origins(options.cors_origins),
            profile=services.profile,
        )
        try:
            sock = bind(options.host, options.port)
        except OSError as error:
            raise StartupError(listen_error(options.host, options.port, error)) from None
    except BaseException:
        db.close()
        raise
    return Runtime(services, Server(app, sock), db, data_dir)


def _client_registry(background: Background) -> Callable[[], ClientRegistry]:
    """The server's outbound clients, made when a provider or platform first needs them:
    the HTTP client and ssl are not loaded by a server that never calls out."""
    made: list[ClientRegistry] = []

    def clients() -> ClientRegistry:
        if not made:
            from astrlite.outbound.registry import ClientRegistry

            made.append(ClientRegistry())
            background.on_shutdown(made[0].aclose)  # pooled connections
        return made[0]

    return clients


def listen_error(host: str, port: int, error: OSError) -> str:
    where = f"cannot listen on {host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return (
            f"{where}: the port is in use (another astrlite?); "
            "choose another with --port (--port 0 picks a free one)"
        )
    if error.errno == errno.EACCES and 0 < port < 1024:
        return f"{where}: ports below 1024 need privileges; choose --port 1024 or above"
    return f"{where}: {error.strerror or error}; check --host"


def _services(
    options: Options,
    data_dir: Path,
    db: Database,
    config_set: configs.ConfigSet,
    providers: ProviderSet,
    clients: Callable[[], ClientRegistry],
    background: Background,
    extra_keys: list[str],
) -> Services:
    prepare_incoming(data_dir)

    def attachment_store() -> AttachmentStore:
        from astrlite.files.attachments import AttachmentStore

        return AttachmentStore(db, data_dir)

    attachments = OnFirstUse(attachment_store)
    metrics = Metrics() if options.metrics else None
    profile = PROFILES[options.compat]

    def chat_service() -> ChatService:
        from astrlite.chat.runner import ChatService
        from astrlite.store.chat import ChatStore
        from astrlite.store.sessions import SessionStore

        return ChatService(
            profile=profile,
            store=ChatStore(db),
            sessions=SessionStore(db),
            attachments=attachments(),
            configs=config_set,
            providers=providers,
            background=background,
            max_queue=options.max_session_queue,
            metrics=metrics,
        )

    # Made on the first chat request or send to the web chat: an idle server does not
    # load the chat runner.
    chat = OnFirstUse(chat_service)
    try:
        platforms = Platforms.build(config_set.default, data_dir, chat, clients)
    except ValueError as error:  # a platform entry that cannot work
        raise StartupError(str(error)) from None
    verifier = keys.KeyVerifier(db, extra_keys)
    if metrics is not None:
        metrics.gauge(
            "queued_turns",
            "Chat turns waiting for their session.",
            lambda: 0 if chat.made is None else chat.made.queued(),
        )
        metrics.gauge("database_size_bytes", "The database with its write-ahead log.", db.size)
    health = HealthProbe(db, data_dir)
    admins = AdminIds.of(config_set, profile.default_admins_id, data_dir)
    if options.retention_days > 0 or options.max_attachment_bytes > 0:
        # Loaded only when a limit is set (F23): most servers keep everything.
        from astrlite.store.sweeper import Limits, Sweeper

        limits = Limits(options.retention_days, options.max_attachment_bytes)
        background.while_serving(Sweeper(db, data_dir, limits).run)
    return Services(
        options,
        config_set,
        verifier,
        attachments,
        chat,
        platforms,
        admins,
        background,
        health,
        metrics,
        profile,
    )
