"""Graceful stop: a service's stop hooks run, while it still serves calls, before it ends.

A stop is asked by a supervisor, by ``kill(addr, graceful=True)`` or by the
node shutting down. The hooks are started the way a `timeout` callback is:
the service registers one session for them when it first calls `on_stop`,
and the stopper posts that session's answer. So the hooks run as a new
coroutine in the service's own turn order, and the stopper never writes the
stopped service's tables. Whoever asks waits at most its `timeout`, then
kills.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Awaitable, Callable

import trio

from .._core.message import PTYPE_RESPONSE
from .._core.monitors import ExitReason
from .._core.request import ServedRequest, TimeoutCallback
from .._core.service import Service
from ..errors import ServiceExit, ServiceNotFound
from .coroutines import wait, wakeup
from .messages import Address, running

__all__ = ["has_stop_hooks", "on_stop", "stop", "stop_reason", "until_ended"]

StopHook = Callable[[], Awaitable[Any]]


class _StopHooks:
    """One service's stop hooks, the session that starts them, and why it is being stopped."""

    __slots__ = ("fns", "session", "reason", "asked")

    def __init__(self, session: int) -> None:
        self.fns: list[StopHook] = []
        self.session = session
        self.reason: str = ExitReason.KILLED
        self.asked = False


def _table(svc: Service) -> dict[int, _StopHooks]:
    table: dict[int, _StopHooks] = svc.node.extension("stop hooks", dict)
    return table


def on_stop(fn: StopHook) -> None:
    """Run ``await fn()`` when this service is asked to stop, before it ends; the newest hook runs first.

    The service goes on serving messages while its hooks run (a hook can
    hand its work over, or wait for calls in flight). When they are done the
    service ends; if they take longer than the stopper allows, it is killed.
    """
    svc = running()
    table = _table(svc)
    hooks = table.get(svc.handle)
    if hooks is None:
        hooks = table[svc.handle] = _StopHooks(svc.new_session())
        svc.sessions[hooks.session] = TimeoutCallback(lambda: _run_hooks(svc, hooks))
        svc.exit_hooks.append(lambda: table.pop(svc.handle, None))
    hooks.fns.append(fn)


def has_stop_hooks(svc: Service) -> bool:
    """Whether `svc` has stop hooks, so stopping it gracefully means waiting for them."""
    return svc.handle in svc.node.extensions.get("stop hooks", {})


def stop_reason() -> str | None:
    """Why this service is being stopped, while its stop hooks run; None if it is not."""
    svc = running()
    hooks = _table(svc).get(svc.handle)
    return hooks.reason if hooks is not None and hooks.asked else None


async def _run_hooks(svc: Service, hooks: _StopHooks) -> None:
    for fn in reversed(hooks.fns):
        try:
            await fn()
        except Exception as exc:
            svc.failed(ServedRequest(0, 0), exc, "stop hook")
    svc.node.retire(svc, hooks.reason)
    raise ServiceExit


async def stop(addr: Address, reason: str = ExitReason.KILLED, timeout: float | None = 5.0) -> None:
    """Stop the service at `addr` gracefully: run its stop hooks, kill it if they take over `timeout` seconds.

    Returns once it has ended (at once if it has no stop hooks or is gone);
    `timeout` None waits for ever. Its monitors are told `reason`. A service
    that stops itself this way has its hooks started, and this returns.
    """
    svc = running()
    node = svc.node
    try:
        target = node.service(addr)
    except ServiceNotFound:
        return
    hooks = _table(svc).get(target.handle)
    if hooks is None or timeout is not None and timeout <= 0:
        node.log(target.handle, "KILL")
        node.retire(target, reason)
        return
    if not hooks.asked:
        hooks.asked = True
        hooks.reason = reason
        node.post(target.handle, (0, hooks.session, PTYPE_RESPONSE, ()))
    if target is svc:
        return
    await until_ended(target.handle, timeout)
    if not target.dead:
        node.log(target.handle, f"KILL: its stop hooks ran over {timeout:g} s")
        node.retire(target, reason)


async def until_ended(handle: int, timeout: float | None = None) -> bool:
    """Wait, letting this service's other coroutines run, until the service `handle` has ended; False on timeout."""
    svc = running()
    token = object()
    ended = False

    def tell(_handle: int, _reason: str) -> None:
        nonlocal ended
        ended = True
        wakeup(token)

    monitor = svc.node.monitors.add(svc, handle, tell)
    try:
        with nullcontext() if timeout is None else trio.move_on_after(timeout):
            await wait(token)
    finally:
        svc.node.monitors.remove(monitor)
    return ended
