"""Start-up: the data directory, database, configs and keys a server runs with."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from astrlite import configs
from astrlite.background import Background
from astrlite.chat.runner import ChatService
from astrlite.endpoints.routes import build_table
from astrlite.files.attachments import AttachmentStore
from astrlite.http.app import App
from astrlite.http.router import Router
from astrlite.im.platforms import Platforms
from astrlite.options import Options
from astrlite.providers.registry import ProviderSet
from astrlite.store import keys
from astrlite.store.chat import ChatStore
from astrlite.store.db import Database, StoreError


class StartupError(Exception):
    """The server cannot start; the message says what to fix."""


@dataclass
class Services:
    options: Options
    data_dir: Path
    db: Database
    configs: configs.ConfigSet
    keys: keys.KeyVerifier
    attachments: AttachmentStore
    chat: ChatService
    platforms: Platforms
    background: Background = field(default_factory=Background)


def prepare_data_dir(path: Path) -> Path:
    """Create the data directory and prove it is writable, with a clear error if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{uuid.uuid4().hex}"
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


def open_services(options: Options, environ: Mapping[str, str] | None = None) -> Services:
    environ = os.environ if environ is None else environ
    data_dir = prepare_data_dir(Path(options.data_dir))
    try:
        extra_keys = static_keys(options, environ)
        config_set = configs.load(data_dir)
        providers = ProviderSet.build(config_set, data_dir)
        db = Database(data_dir)
    except (ValueError, StoreError) as error:  # bad keys, configs or provider entries
        raise StartupError(str(error)) from None
    attachments = AttachmentStore(db, data_dir)
    attachments.remove_leftovers()
    background = Background()
    background.on_shutdown(providers.aclose)
    chat = ChatService(
        store=ChatStore(db),
        attachments=attachments,
        configs=config_set,
        providers=providers,
        background=background,
        max_queue=options.max_session_queue,
    )
    try:
        platforms = Platforms.build(config_set.default, data_dir, chat, background)
    except ValueError as error:  # a platform entry that cannot work
        db.close()
        raise StartupError(str(error)) from None
    verifier = keys.KeyVerifier(db, extra_keys)
    return Services(
        options, data_dir, db, config_set, verifier, attachments, chat, platforms, background
    )


def build_app(services: Services) -> App:
    return App(
        services.options,
        Router(build_table(services)),
        services.keys,
        touch=services.keys.touch_if_due,
        background=services.background,
    )
