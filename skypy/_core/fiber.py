"""A coroutine of a service, run by whichever task holds the service's turn.

skynet's coroutines are Lua coroutines: resuming one is a function call. A
trio task is far dearer to resume (a pass of trio's scheduler and a task
switch), so a service's coroutines are not trio tasks of their own: the
service's loop task resumes them with ``coro.send``, and a coroutine that
suspends for a skypy primitive (a call's answer, a wakeup, a sleep) yields
`SUSPEND` back to it, having registered itself where its wake-up will find
it. A hundred coroutines waiting on calls cost the loop task one step for
every batch of answers, not a task switch each.

A coroutine that awaits trio itself (a trio sleep, an event, a trio
stream) or suspends inside a cancel scope it opened needs a trio task:
trio's primitives register the running task, and a cancel scope belongs to
the task that entered it. The task that was resuming it is exactly that
task, so it stays with the coroutine from then on (its *carrier*), and the
service gets a new loop task (see Service.conscript).
"""

from __future__ import annotations

import contextvars
import enum
import types
from typing import Any, Coroutine, Final, Generator

import outcome
from trio.lowlevel import Task

from .request import ServedRequest


class Yielded(enum.Enum):
    """What a coroutine yields to the task resuming it, besides trio's own traps."""

    SUSPEND = "parked in a skypy primitive; its waker will resume it"
    CARRY = "wants a trio task of its own from now on"
    PAUSE = "lets trio run the rest of the node, keeping the turn"
    ENDED = "returned or raised (never yielded: what the resuming task notes)"


SUSPEND: Final = Yielded.SUSPEND
CARRY: Final = Yielded.CARRY
PAUSE: Final = Yielded.PAUSE
ENDED: Final = Yielded.ENDED


class Fiber:
    """One coroutine of a service: what it serves, and the task carrying it, if any.

    Also stands for a task outside the service's coroutines (the `open_node`
    block, a task the user spawned) while it waits on a skypy primitive:
    then `coro` is None and `task` is that task.
    """

    __slots__ = ("coro", "context", "request", "answers", "what", "task", "session", "token", "__weakref__")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any] | None,
        context: contextvars.Context | None,
        request: ServedRequest,
        answers: bool,
        what: str,
        task: Task | None = None,
    ) -> None:
        self.coro = coro
        # Its own copy of the context variables, as a trio task has: what one
        # coroutine sets, another of the same service does not see.
        self.context = context
        self.request = request
        # Answer `request` with the coroutine's result (see Service.finish).
        self.answers = answers
        self.what = what  # named in the log if it raises
        # The trio task it runs in, once it has one (see the module's doc).
        self.task = task
        # What it last waited on: a session, a wait token (see Service.forget).
        self.session = 0
        self.token: object = None

    def __repr__(self) -> str:
        name = getattr(self.coro, "__qualname__", None) or (self.task.name if self.task else "?")
        return f"<coroutine {name} ({self.what})>"


# What a parked coroutine is resumed with: a value (an answer's tuple, a
# wakeup's "BREAK"), or an outcome.Error to raise where it waits. Values go
# as they are, not wrapped in an outcome.Value: making one costs more than
# the rest of a resumption's bookkeeping.
Resumption = Any


def raised(resumed: Resumption) -> Any:
    """`resumed` itself, or what it carries raised if it is an outcome.Error."""
    if type(resumed) is outcome.Error:
        resumed.unwrap()
    return resumed


@types.coroutine
def suspend() -> Generator[Yielded, Resumption, Any]:
    """Park the running coroutine until its waker resumes it; what it was resumed with (see `raised`)."""
    resumed = yield SUSPEND
    if type(resumed) is outcome.Error:
        resumed.unwrap()
    return resumed


@types.coroutine
def pause() -> Generator[Yielded, Resumption, None]:
    """Let trio run the rest of the node once; the running coroutine keeps the turn and goes on first."""
    raised((yield PAUSE))


@types.coroutine
def ask_for_task() -> Generator[Yielded, Any, None]:
    """Move the running coroutine to a trio task of its own, before code that handles the turn itself."""
    yield CARRY



@types.coroutine
def forward_trap(trap: Any) -> Generator[Any, Any, Any]:
    """Yield `trap`, one of trio's that a coroutine yielded, to trio; return what trio sends back for it."""
    return (yield trap)
