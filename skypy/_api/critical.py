"""skynet's ``skynet.queue()``: a critical section for the coroutines of one service.

A service's coroutines interleave wherever one suspends, so state touched
across a suspension (a login that calls a database between two updates)
needs a critical section. `queue()` gives one: the functions passed to it
run one at a time in the order they were passed, each to its end, even
when they suspend. The coroutine inside may enter again (a function that
calls another through the same queue), as skynet's is re-entrant: a lock
that deadlocked its own holder would be useless for nested calls.

Waiting and handing over use the service's own `wait`/`wakeup`, so the
turn's order holds: the next coroutine in line resumes as a woken one.
"""

from __future__ import annotations

import enum
from collections import deque
from types import TracebackType
from typing import Any, Awaitable, Callable, TypeVar

from trio.lowlevel import Task

from .._core.fiber import Fiber
from .._core.message import address
from .._core.service import Service
from ..errors import SkypyError
from .coroutines import wait, wakeup
from .messages import running

T = TypeVar("T")

__all__ = ["CriticalSection", "queue"]


class _Handing(enum.Enum):
    """Holds the section between a holder leaving and the next in line resuming."""

    OVER = "handed to the next in line"


class CriticalSection:
    """Runs the coroutines that enter it one at a time, in arrival order; re-entrant for its holder."""

    __slots__ = ("_service", "_holder", "_depth", "_waiting")

    def __init__(self) -> None:
        # The service whose coroutines it orders, from first use: its hand-over
        # is a wakeup, which only reaches coroutines of the service making it.
        self._service: Service | None = None
        self._holder: Fiber | Task | _Handing | None = None
        self._depth = 0
        # The wait tokens of the coroutines in line, first come first.
        self._waiting: deque[object] = deque()

    async def __call__(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` inside the section and return what it returns."""
        async with self:
            return await fn(*args)

    async def __aenter__(self) -> None:
        svc = running()
        if self._service is None:
            self._service = svc
        elif self._service is not svc:
            raise SkypyError(
                f"this skypy.queue() orders the coroutines of {address(self._service.handle)}, "
                f"not of {address(svc.handle)}: each service needs its own"
            )
        me = svc.me()
        if self._holder is me:
            self._depth += 1
            return
        if self._holder is not None:
            token = object()
            self._waiting.append(token)
            try:
                await wait(token)
            except BaseException:
                # Cancelled while in line: leave it. (Once woken, the section
                # was handed over and the wait returns normally.)
                self._waiting.remove(token)
                raise
        # Handed over by the leaving holder (below), or free.
        self._holder = me
        self._depth = 1

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth:
            return
        self._holder = None
        if self._waiting:
            # Reserved for the next in line until it resumes, so that a
            # coroutine arriving meanwhile queues behind it.
            self._holder = _Handing.OVER
            wakeup(self._waiting.popleft())

    @property
    def locked(self) -> bool:
        """Whether a coroutine is inside (or about to be)."""
        return self._holder is not None


def queue() -> CriticalSection:
    """A new critical section: ``await cs(fn, *args)`` or ``async with cs:`` (skynet's ``skynet.queue()``)."""
    return CriticalSection()
