"""Command line: `astrlite [serve] [options]`, `astrlite keys ...`, `astrlite --version`."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import anyio

from . import __version__, options
from .app import App
from .auth import Principal
from .routes import build_table
from .routing import Router
from .server import Server, bind

USAGE = """usage: astrlite [serve] [options]     run the server (astrlite serve --help)
       astrlite --version            print the version"""


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def env_key_verifier(environ: dict[str, str] | os._Environ[str]) -> dict[str, Principal]:
    keys = [k.strip() for k in environ.get("ASTRLITE_API_KEY", "").split(",") if k.strip()]
    return {key: Principal(f"env:{n}", frozenset({"*"})) for n, key in enumerate(keys, 1)}


def serve(argv: Sequence[str]) -> int:
    try:
        opts = options.parse(argv)
    except options.OptionError as error:
        print(f"astrlite: {error}", file=sys.stderr)
        return 2
    configure_logging(opts.log_level)
    if not opts.access_log:
        logging.getLogger("astrlite.access").disabled = True
    keys = env_key_verifier(os.environ)
    app = App(opts, Router(build_table()), keys.get)
    try:
        sock = bind(opts.host, opts.port)
    except OSError as error:
        print(f"astrlite: cannot listen on {opts.host}:{opts.port}: {error.strerror}", file=sys.stderr)
        return 1
    server = Server(app, sock)
    print(f"astrlite {__version__} listening on {server.url}", flush=True)
    anyio.run(lambda: server.serve(handle_signals=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        print(f"astrlite {__version__}")
        return 0
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if args[:1] == ["serve"]:
        args = args[1:]
    return serve(args)
