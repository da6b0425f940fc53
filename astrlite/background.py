"""Tasks that outlive the request that started them (a chat turn finishes and is saved
even when its client has gone, F5). The server attaches its task group at start-up and
cancels it after the shutdown grace period."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio.abc


class Background:
    def __init__(self) -> None:
        self._group: anyio.abc.TaskGroup | None = None

    def attach(self, group: anyio.abc.TaskGroup | None) -> None:
        self._group = group

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        if self._group is None:
            raise RuntimeError("background tasks need a running server")
        self._group.start_soon(func, *args)
