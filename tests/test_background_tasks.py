"""Connection tasks outside a task group: tracked, logged, cancelled at shutdown."""

from __future__ import annotations

import asyncio
import logging

import anyio
import pytest

from astrlite.background import TaskSet

pytestmark = pytest.mark.anyio


async def test_cancel_all_ends_what_still_runs_and_waits_for_it() -> None:
    tasks = TaskSet()
    ended: list[str] = []

    async def hang() -> None:
        try:
            with anyio.move_on_after(60):  # anyio scopes work inside
                await anyio.sleep_forever()
        finally:
            ended.append("hang")

    async def quick() -> None:
        ended.append("quick")

    tasks.start_soon(hang)
    tasks.start_soon(quick)
    await anyio.wait_all_tasks_blocked()
    await asyncio.sleep(0)  # done callbacks run on the next loop pass
    assert ended == ["quick"] and len(tasks) == 1  # a finished task is let go
    await tasks.cancel_all()
    assert ended == ["quick", "hang"] and len(tasks) == 0


@pytest.mark.parametrize("scoped", [False, True])
async def test_a_failed_task_is_logged_and_let_go(
    caplog: pytest.LogCaptureFixture, scoped: bool
) -> None:
    tasks = TaskSet(scoped=scoped)

    async def fail(message: str) -> None:
        raise RuntimeError(message)

    with caplog.at_level(logging.ERROR, "astrlite"):
        tasks.start_soon(fail, "boom")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert len(tasks) == 0
    assert "task " in caplog.text and "RuntimeError: boom" in caplog.text


async def test_a_scoped_task_finishes_its_shielded_section_first() -> None:
    tasks = TaskSet(scoped=True)
    steps: list[str] = []
    saving = anyio.Event()

    async def turn() -> None:
        with anyio.CancelScope(shield=True):
            saving.set()
            await anyio.sleep(0.01)  # say, the turn being saved
            steps.append("saved")
        await anyio.sleep_forever()
        steps.append("never")

    tasks.start_soon(turn)
    await saving.wait()
    await tasks.cancel_all()
    assert steps == ["saved"] and len(tasks) == 0


async def test_a_scoped_task_cancelled_before_it_ran_is_let_go() -> None:
    tasks = TaskSet(scoped=True)
    ran: list[str] = []

    async def turn() -> None:
        ran.append("ran")

    tasks.start_soon(turn)
    with anyio.fail_after(5):
        await tasks.cancel_all()  # before the task's first step
    assert ran == [] and len(tasks) == 0
