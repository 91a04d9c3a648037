"""The node's meter: which service holds the trio thread, since when, and for how long in all.

A trio Instrument, so the cost is paid per task step, not per message: a
service's loop handles up to a batch of messages in one step. Each step's
time is charged to the service whose task ran it (found through the task's
context, where every service task sets `service.current`); a handler that
another task ran inline is charged by `Service.run_inline`, and what a
service's task ran of another's is lent back here. The watchdog thread reads `task`, `steps` and `started`
to see a step that never ends.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING

import trio
from trio.lowlevel import Task

from .current import current

if TYPE_CHECKING:
    from .node import Node


class Meter(trio.abc.Instrument):
    """Charges each task step's time to its service and marks the step that is running."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # The step running now (or the last of a batch; None while trio
        # waits for I/O), when it started, and a count of steps, so a reader
        # in another thread can tell two apart.
        self.task: Task | None = None
        self.started = 0.0
        self.steps = 0
        # Time within the running step already charged to inline callees.
        self.lent = 0.0

    # One hook per task step, not two: a step is charged when the next one
    # begins, or when trio goes to wait for I/O (once per batch of steps), as
    # trio's instrument calls are the costliest part of metering.
    def before_task_step(self, task: Task) -> None:
        now = perf_counter()
        if self.task is not None:
            self._charge(self.task, now)
        self.steps += 1
        self.started = now
        self.task = task

    def before_io_wait(self, timeout: float) -> None:
        if self.task is not None:
            self._charge(self.task, perf_counter())
            self.task = None

    def _charge(self, task: Task, now: float) -> None:
        svc = task.context.get(current, None)
        if svc is not None and svc.node is self.node:
            svc.cpu += now - self.started - self.lent
        self.lent = 0.0
