"""A service's worker tasks: each runs one coroutine (handler, fork, timeout) at a time, under the turn.

Like skynet's coroutine pool: a worker that finishes waits for the next job
instead of ending, so a coroutine handler costs no task spawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Coroutine, NamedTuple

import outcome
from trio.lowlevel import Abort, Task, current_task, wait_task_rescheduled

from ..errors import ServiceExit
from .current import current
from .message import address
from .request import ServedRequest

if TYPE_CHECKING:
    from .service import Service

# Idle worker tasks kept per service; more are started on demand.
MAX_IDLE_WORKERS = 16



class Job(NamedTuple):
    """A coroutine for a worker to run, and the request it serves."""

    request: ServedRequest
    coro: Coroutine[Any, Any, Any]
    answers: bool  # answer `request` with the coroutine's result (see Service.finish)
    what: str  # named in the log if it raises


class Workers:
    """The worker tasks of one service, and those idle among them."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.idle: list[Task] = []

    def start(self, job: Job) -> None:
        """Give the turn and `job` to an idle worker, or to a new one."""
        svc = self.service
        if self.idle:
            svc.turn.hand_to(self.idle.pop(), outcome.Value(job))
        else:
            svc.turn.reserve()
            assert svc.nursery is not None
            svc.nursery.start_soon(self._run, job, name=f"skypy{address(svc.handle)}")

    async def _run(self, job: Job) -> None:
        """Run coroutines one after another, holding the turn, until none is wanted."""
        svc = self.service
        current.set(svc)
        task = current_task()
        if svc.dead:  # gone between being spawned and starting
            job.coro.close()
            return
        svc.turn.holder = task
        while True:
            request, coro, answers, what = job
            svc.request = request
            try:
                result = await coro
            except ServiceExit:
                return
            except Exception as exc:
                svc.failed(request, exc, what)
            else:
                svc.finish(request, result, answers)
            if svc.suspend_hooks:
                svc.suspending(task)
            if svc.dead or len(self.idle) >= MAX_IDLE_WORKERS:
                svc.turn.release()
                return
            self.idle.append(task)
            own = svc.pass_turn(task)
            if own is not None:
                job = own.unwrap()
            else:
                job = await wait_task_rescheduled(lambda _: self._cancelled(task))

    def _cancelled(self, task: Task) -> Abort:
        # Out of the pool first, so nobody hands a job to a task that trio
        # is already resuming with Cancelled.
        self.idle.remove(task)
        return Abort.SUCCEEDED
