"""Tasks that outlive the request that started them (a chat turn finishes and is saved
even when its client has gone, F5), and what must be closed when the server stops
(pooled outbound connections). The server attaches its task group at start-up, runs
the closers once its connections are done, then cancels the group."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import anyio
import anyio.abc

log = logging.getLogger("astrlite")
# Closing pooled connections is quick; a stuck one must not hold up the shutdown.
CLOSE_TIMEOUT = 2.0


class Spawner(Protocol):
    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any: ...


class TaskSet:
    """Tasks as plain asyncio tasks, not in an anyio task group.

    A task group gives each task a handle, a cancel scope and an event: ~2.3 KiB a task
    (tracemalloc), the largest items of a held SSE stream (its connection and its turn
    worker). These tasks need none of it: each ends on its own and handles its own
    errors (anyio's cancel scopes work inside); `cancel_all` ends the stragglers.
    `scoped`: each task runs in one anyio cancel scope, which `cancel_all` cancels, so
    its shielded sections (a wait for the writer thread) finish first, and lets itself go
    when it ends (a done callback is one more loop step per chat turn); otherwise the
    task itself is cancelled, at the await it is in."""

    __slots__ = ("_scoped", "_tasks")

    def __init__(self, *, scoped: bool = False) -> None:
        self._scoped = scoped
        # Also what keeps the tasks alive: the loop holds only weak references.
        self._tasks: dict[asyncio.Task[Any], anyio.CancelScope | None] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        loop = asyncio.get_running_loop()
        if self._scoped:  # the task lets itself go (_in_scope): no callback to schedule
            self._tasks[loop.create_task(self._in_scope(func, *args))] = None
            return
        task = loop.create_task(func(*args))
        self._tasks[task] = None
        task.add_done_callback(self._done)

    async def _in_scope(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        task = asyncio.current_task()
        assert task is not None  # it is one: start_soon made it
        try:
            with anyio.CancelScope() as scope:
                self._tasks[task] = scope
                await func(*args)
        except Exception:
            log.exception("task %s failed", func)
        finally:
            self._tasks.pop(task, None)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("task %s failed", task.get_coro(), exc_info=error)

    async def cancel_all(self) -> None:
        """Cancel what still runs and wait until it has ended."""
        while self._tasks:
            tasks = list(self._tasks.items())
            for task, scope in tasks:
                if scope is None:
                    task.cancel()
                else:
                    scope.cancel()
            await asyncio.wait([task for task, _ in tasks])
            for task, _ in tasks:  # one cancelled before it ran never let itself go
                self._tasks.pop(task, None)


class Background:
    def __init__(self) -> None:
        self._group: Spawner | None = None
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

    def attach(self, group: Spawner | None) -> None:
        """Where tasks are started: the server's TaskSet, or a test's task group."""
        self._group = group
        if group is not None:
            for service in self._services:
                group.start_soon(service)

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        if self._group is None:
            raise RuntimeError("background tasks need a running server")
        self._group.start_soon(func, *args)
