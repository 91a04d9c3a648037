"""The debug protocol (PTYPE_DEBUG): what every service answers without user code, as in skynet.

    await skypy.call(addr, "debug", "STAT")   # {"cpu": .., "message": .., "mqlen": .., "task": ..}

Commands: STAT, TASK, INFO, EXIT, PING, LINK, RUN, GC, MEM. The node
installs `HANDLER` in every service at creation; a service may replace it
with ``skypy.dispatch("debug", ...)`` as a skynet service may.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import inspect
import io
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import trio

from .._api import lifecycle, messages as api
from .._core.bounded import BoundedMailbox
from .._core.fiber import Fiber
from .._core.message import address
from .._core.protocol import Handler
from .._core.request import TimeoutCallback
from .._core.service import Service
from ._footprint import size_of

# The commands themselves are reached through the protocol, by name.
__all__ = ["COMMANDS", "HANDLER", "info_func", "roots", "stack_of", "suspended"]

_TRIO_DIR = str(Path(trio.__file__).parent)


def suspended(svc: Service) -> dict[str, Fiber]:
    """The service's coroutines suspended in a skypy primitive, by what they wait for."""
    fibers = {f"session {s}": w for s, w in svc.sessions.items() if type(w) is Fiber}
    for token, (fiber, session) in svc.waiting.items():
        if not session:  # a sleep's coroutine is already listed under its session
            fibers[f"wait {token!r}"] = fiber
    return fibers


def stack_of(fiber: Fiber) -> str:
    """Where `fiber` is suspended: its chain of awaits, innermost last, without trio's frames."""
    frames = []
    awaitable: Any = fiber.coro
    if awaitable is None and fiber.task is not None:  # a task outside the coroutines, waiting
        awaitable = fiber.task.coro
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is not None and not frame.f_code.co_filename.startswith(_TRIO_DIR):
            frames.append((frame, frame.f_lineno))
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return "".join(traceback.StackSummary.extract(frames).format()).rstrip()


def info_func(fn: Callable[..., Any]) -> None:
    """Answer the debug INFO request (the console's ``info ADDR``) with ``fn(*args)``; it may be async."""
    api.running().info_func = fn


def stat() -> dict[str, Any]:
    """Seconds spent running this service's code, messages handled, mailbox length, suspended coroutines."""
    svc = api.running()
    result = {
        "cpu": round(svc.cpu, 6),
        "message": svc.messages_handled,
        "mqlen": len(svc.mailbox),
        "task": len(suspended(svc)),
    }
    if svc.endless:
        result["endless"] = True
    if isinstance(svc.mailbox, BoundedMailbox) and svc.mailbox.dropped:
        result["dropped"] = svc.mailbox.dropped  # messages its mailbox_limit refused
    return result


def task() -> dict[str, str]:
    """Each suspended coroutine's stack, keyed by the session or wait token it waits on."""
    return {key: stack_of(t) for key, t in suspended(api.running()).items()}


async def info(*args: Any) -> Any:
    """What the service's `info_func` returns for `args` (None if it set none)."""
    fn = api.running().info_func
    if fn is None:
        return None
    result = fn(*args)
    return await result if inspect.isawaitable(result) else result


def exit() -> None:
    """End the service cleanly, as ``skypy.exit()`` would."""
    lifecycle.exit()


def ping() -> None:
    """Answer at once: the service is alive and taking messages."""


def link() -> None:
    """Never answered while the service lives: the caller's call fails when it exits."""
    api.response()  # keeps the request owed; the exit fan-out fails it


def run(source: str, filename: str = "<inject>") -> tuple[bool, str]:
    """Execute `source` in the service's module namespace; (ok, what it printed or its traceback).

    The namespace is the globals of the service's module, so injected code
    can read and replace its functions and state; a service started from a
    callable gets the globals of the module that defines it. Output of
    `print` is captured, as skynet's inject returns its prints.
    """
    svc = api.running()
    if svc.namespace is None:
        svc.namespace = {"__name__": f"skypy.inject{address(svc.handle)}", "__builtins__": builtins}
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            exec(compile(source, filename, "exec"), svc.namespace)
    except Exception:
        return False, output.getvalue() + traceback.format_exc()
    return True, output.getvalue()


def collect() -> int:
    """Run Python's full garbage collection (one heap for the whole node); how many objects it found."""
    return gc.collect()


def mem() -> float:
    """KiB held by this service's own objects, best effort (see _footprint.py and `roots`)."""
    svc = api.running()
    return size_of(roots(svc), stop=[svc.node]) / 1024


def roots(svc: Service) -> list[Any]:
    """What belongs to `svc` alone: handlers, queued messages and forks, timeouts, suspended coroutines, namespace."""
    found: list[Any] = [svc.handlers, list(svc.mailbox), list(svc.forks), svc.info_func]
    found += [w.fn for w in svc.sessions.values() if type(w) is TimeoutCallback]
    found += [f.coro for f in suspended(svc).values() if f.coro is not None]
    namespace = svc.namespace
    # A module in sys.modules is shared with whatever imports it (a service
    # given as a function defined there), so it is not this service's own.
    if namespace is not None and namespace.get("__name__") not in sys.modules:
        found.append(namespace)
    return found


COMMANDS: dict[str, Callable[..., Any]] = {
    "STAT": stat, "TASK": task, "INFO": info, "EXIT": exit, "PING": ping, "LINK": link,
    "RUN": run, "GC": collect, "MEM": mem,
}
HANDLER = Handler(None, COMMANDS)
