"""A service's own coroutines and time: fork, sleep, timeout, wait/wakeup, unlocked."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

import trio
from trio.lowlevel import current_task

from .._core.message import PTYPE_RESPONSE
from .._core.request import ServedRequest, TimeoutCallback
from .._core.service import Fork, Service
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
    _schedule(svc, seconds, session)
    result = await svc.suspend_until_woken(current_task() if token is None else token, session)
    return None if result == () else result


async def yield_() -> None:
    """Let every message already queued for this service run first (skynet's yield)."""
    await sleep(0)


def timeout(seconds: float, fn: Callable[[], Any]) -> None:
    """Run ``fn()`` as a new coroutine of this service after `seconds`."""
    svc = running()
    session = svc.new_session()
    svc.sessions[session] = TimeoutCallback(fn)
    _schedule(svc, seconds, session)


def _schedule(svc: Service, seconds: float, session: int) -> None:
    # A zero delay is a message queued now, behind those already waiting,
    # not a timer that might fire after later messages.
    if seconds > 0:
        svc.node.timers.add(seconds, svc.handle, session)
    else:
        svc.node.post(svc.handle, (0, session, PTYPE_RESPONSE, ()))


async def wait(token: object = None) -> None:
    """Suspend until `wakeup(token)`; the token defaults to the current trio task."""
    svc = running()
    await svc.suspend_until_woken(current_task() if token is None else token)


def wakeup(token: object) -> bool:
    """Resume the coroutine waiting on `token` when this one next suspends."""
    return running().wakeup(token)


async def unlocked(awaitable: Awaitable[T]) -> T:
    """Await `awaitable` while letting this service's other coroutines and messages run."""
    svc = running()
    turn = svc.turn
    if turn.holder is not current_task():
        return await awaitable
    request = svc.request
    if svc.suspend_hooks:
        svc.suspending(turn.holder)
    turn.release()
    try:
        return await awaitable
    finally:
        with trio.CancelScope(shield=True):
            await turn.acquire()
        svc.request = request
