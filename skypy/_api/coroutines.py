"""A service's own coroutines and time: fork, sleep, timeout, wait/wakeup, unlocked."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

import trio

from .._core.request import ServedRequest, TimeoutCallback
from .._core.service import Fork
from .messages import running

T = TypeVar("T")

__all__ = ["fork", "sleep", "timeout", "unlocked", "wait", "wakeup", "yield_"]



def fork(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` as a new coroutine of this service once the running one suspends."""
    svc = running()
    svc.forks.append(Fork(ServedRequest(0, 0), fn, args, False, "fork"))
    svc.turn.kick()


async def sleep(seconds: float, token: object = None) -> str | None:
    """Suspend for `seconds`; returns "BREAK" if `wakeup(token)` ends it early."""
    svc = running()
    session = svc.new_session()
    svc.wake_after(seconds, session)
    result = await svc.suspend_until_woken(svc.me() if token is None else token, session)
    return None if result == () else result


async def yield_() -> None:
    """Let every message already queued for this service run first (skynet's yield)."""
    await sleep(0)


def timeout(seconds: float, fn: Callable[[], Any]) -> None:
    """Run ``fn()`` as a new coroutine of this service after `seconds`."""
    svc = running()
    session = svc.new_session()
    svc.sessions[session] = TimeoutCallback(fn)
    svc.wake_after(seconds, session)


async def wait(token: object = None) -> None:
    """Suspend until `wakeup(token)`; the token defaults to the running coroutine."""
    svc = running()
    await svc.suspend_until_woken(svc.me() if token is None else token)


def wakeup(token: object) -> bool:
    """Resume the coroutine waiting on `token` when this one next suspends."""
    return running().wakeup(token)


async def unlocked(awaitable: Awaitable[T]) -> T:
    """Await `awaitable` while letting this service's other coroutines and messages run."""
    svc = running()
    if not svc.holds_turn():
        return await awaitable
    fiber = await svc.carried()
    turn = svc.turn
    request = svc.request
    turn.release()
    try:
        return await awaitable
    finally:
        with trio.CancelScope(shield=True):
            await turn.acquire(fiber)
        svc.request = request
