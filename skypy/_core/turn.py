"""The turn: at most one coroutine of a service runs, and it is handed on in skynet's order.

trio runs ready tasks in a deliberately random order, so a service whose
coroutines were all runnable trio tasks would interleave them differently on
every run. Instead a service's coroutines (fiber.py) are resumed one at a
time, in the order chosen here: by the loop task itself, or, for one that
has a trio task of its own, by rescheduling that task, which otherwise
parks in ``wait_task_rescheduled``. trio's randomness then has only one
runnable task per service to pick from.

The order is skynet's: coroutines woken since the turn was last passed run
first (FIFO); then queued forks start, then the next mailbox message is
dispatched. The service's loop task does this, and so does a coroutine with a task of
its own that suspends (see Service.pass_turn): it runs the next steps itself
until some other task holds the turn, which saves a round through trio's
scheduler.
Cancellation of a parked coroutine (a call timeout, say) counts as a
wake-up and waits its turn like one, rather than letting trio resume it at
once next to the running holder.

The holder is the coroutine (a Fiber) whose code runs, or the task running
plain handlers for the service (its loop, a coroutine's task passing the
turn on, a sender running an idle service inline).

Every parked task is rescheduled exactly once, by whichever comes first:
its waker, the turn passing to it, or (once the service is closing) trio's
cancellation. trio treats a second reschedule as an internal error, so each
path below says why it cannot happen twice.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Callable

import outcome
from trio.lowlevel import Abort, Task, reschedule, wait_task_rescheduled

from .fiber import Fiber, Resumption


class Stand(enum.Enum):
    """What holds the turn when no task does: one about to start, one to come, or nobody ever again."""

    SPAWNING = "given to a loop task that has not started yet"
    QUEUED = "to be run by the task of a delivering block, when the block ends (Node.delivering)"
    CLOSED = "the service is gone"


class Turn:
    """Hands a service's single turn between its loop task and its coroutines."""

    __slots__ = ("holder", "ready", "loop_task", "closed", "passing", "own")

    def __init__(self) -> None:
        # Who may run service code now: None while the service is idle (its
        # loop parked with nothing to do), SPAWNING while it is given to a
        # loop task that has not started yet.
        self.holder: Fiber | Task | Stand | None = Stand.SPAWNING
        # Coroutines to resume, with what to resume them with (fiber.Resumption;
        # None too for a coroutine's start).
        self.ready: deque[tuple[Fiber, Resumption]] = deque()
        # None while a loop task is starting (at first, and after the loop
        # task became a coroutine's own: Service.conscript).
        self.loop_task: Task | None = None
        # Set when the service is going (retired, or its tasks cancelled from
        # outside): nobody gets the turn again, and a parked task is resumed
        # or cancelled at once, with no turn to wait for.
        self.closed = False
        # The task running Service.advance, and what was handed to it
        # meanwhile (its own coroutine's answer came next): it must not be
        # rescheduled, since it is not parked.
        self.passing: Task | None = None
        self.own: tuple[Resumption] | None = None

    def wake(self, fiber: Fiber, value: Resumption) -> None:
        """Queue a parked coroutine to resume, with `value`, when the turn comes to it."""
        if self.closed:
            if fiber.task is not None:
                reschedule(fiber.task, outcome.Value(value))
            return  # one without a task is closed with the service (Service.close_fibers)
        self.ready.append((fiber, value))
        if self.holder is None:  # kick(), inlined: every wakeup comes here
            self.give_loop()

    def kick(self) -> None:
        """Tell an idle service's loop that there is work (a message, a fork)."""
        if self.holder is None:
            self.give_loop()

    def close(self) -> None:
        """The service is going: nobody gets the turn again; woken tasks run at once to their end."""
        if self.closed:
            return
        self.closed = True
        self.holder = Stand.CLOSED
        # Those without a task stay, for Service.close_fibers to close.
        ready, self.ready = self.ready, deque()
        for fiber, value in ready:
            if fiber.task is None:
                self.ready.append((fiber, value))
            else:
                reschedule(fiber.task, outcome.Value(value))

    def hand_to(self, fiber: Fiber, value: Resumption) -> None:
        """Give the turn straight to `fiber`, which has a task of its own, resuming it with `value`."""
        self.holder = fiber
        task = fiber.task
        assert task is not None
        if task is self.passing:
            self.own = (value,)
        else:
            reschedule(task, outcome.Value(value))

    def release(self) -> None:
        """The holder gives the turn up: to the first woken coroutine with a task, else to the loop."""
        if self.closed:
            return
        if self.ready and self.ready[0][0].task is not None:
            self.hand_to(*self.ready.popleft())
        else:
            self.give_loop()

    def abort_for(self, fiber: Fiber, unregister: Callable[[Fiber], bool]) -> Callable[[Callable[[], object]], Abort]:
        """The abort function for the task of `fiber`, parked until a wakeup.

        `unregister` undoes the registration that would have woken it (a
        session, a wait token) and says whether it was still there.
        """

        def abort(raise_cancel: Callable[[], object]) -> Abort:
            if not unregister(fiber):
                # Already woken and queued in `ready`: it resumes from there,
                # and the cancellation hits at its next checkpoint.
                return Abort.FAILED
            if self.closed:
                return Abort.SUCCEEDED
            self.wake(fiber, outcome.capture(raise_cancel))
            return Abort.FAILED

        return abort

    async def acquire(self, fiber: Fiber) -> None:
        """Wait for the turn for `fiber`, whose task gave it up (Service.unlocked)."""
        if self.holder is fiber or self.closed:
            return

        def abort(raise_cancel: Callable[[], object]) -> Abort:
            self.ready.remove(entry)
            return Abort.SUCCEEDED

        entry: tuple[Fiber, Resumption] = (fiber, None)
        self.ready.append(entry)
        if self.holder is None:
            self.give_loop()
        await wait_task_rescheduled(abort)

    def give_loop(self) -> None:
        """Hand the turn to the (parked) loop task, which carries on from where it stopped,
        or, while a loop task is starting, to that one."""
        loop = self.loop_task
        if loop is None:
            self.holder = Stand.SPAWNING
        else:
            self.holder = loop
            reschedule(loop)

    async def park_loop(self) -> None:
        """The loop task waits until it holds the turn again (after a hand-off, or idle)."""
        await wait_task_rescheduled(self._loop_cancelled)

    def _loop_cancelled(self, _: object) -> Abort:
        # The loop is only cancelled when the service is going; closing first
        # means no later kick can reschedule it a second time.
        self.close()
        return Abort.SUCCEEDED
