"""Tasks that outlive the request that started them (a chat turn finishes and is saved
even when its client has gone, F5), and what must be closed when the server stops
(pooled outbound connections). The server attaches its task group at start-up, runs
the closers once its connections are done, then cancels the group."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import anyio.abc

log = logging.getLogger("astrlite")
# Closing pooled connections is quick; a stuck one must not hold up the shutdown.
CLOSE_TIMEOUT = 2.0


class Background:
    def __init__(self) -> None:
        self._group: anyio.abc.TaskGroup | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._services: list[Callable[[], Coroutine[Any, Any, Any]]] = []

    def while_serving(self, service: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``service`` (a loop, such as the sweeper) from start-up until shutdown."""
        self._services.append(service)

    def on_shutdown(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Await `closer` when the server stops (latest registered first)."""
        self._closers.append(closer)

    async def shut_down(self) -> None:
        for closer in reversed(self._closers):
            with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
                try:
                    await closer()
                except Exception:
                    log.exception("closing %r at shutdown failed", closer)

    def attach(self, group: anyio.abc.TaskGroup | None) -> None:
        self._group = group
        if group is not None:
            for service in self._services:
                group.start_soon(service)

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        if self._group is None:
            raise RuntimeError("background tasks need a running server")
        self._group.start_soon(func, *args)
