"""Waiting for a condition without timed sleeps."""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable

import trio
import trio.testing

DEFAULT_TIMEOUT = 10.0


async def wait_until(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = DEFAULT_TIMEOUT) -> None:
    """Return once ``predicate()`` (sync or async) is true, testing it again each
    time every other task is blocked; trio.TooSlowError after `timeout` seconds."""
    with trio.fail_after(timeout):
        while not await _holds(predicate):
            await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(0)  # let a task that was waiting for us run first


async def _holds(predicate: Callable[[], Any]) -> bool:
    result = predicate()
    return bool(await result if inspect.isawaitable(result) else result)
