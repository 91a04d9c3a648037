"""The node's timer: one task and a heap, firing sessions back into mailboxes.

A firing is an ordinary RESPONSE message in the sleeper's mailbox, so it
queues behind what is already there, as skynet's timer messages do. One task
for all timers (rather than one trio task per sleep) keeps a sleep as cheap
as a heap push.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Callable

import trio


class Timers:
    """Calls ``fire(handle, session)`` when each timer's deadline passes."""

    def __init__(self, fire: Callable[[int, int], None]) -> None:
        self._fire = fire
        self._heap: list[tuple[float, int, int, int]] = []
        self._order = itertools.count()  # keeps equal deadlines first-in, first-out
        self._scope = trio.CancelScope()

    def add(self, seconds: float, handle: int, session: int) -> None:
        """Fire `session` at `handle` after `seconds` (trio's clock)."""
        deadline = trio.current_time() + max(seconds, 0.0)
        heapq.heappush(self._heap, (deadline, next(self._order), handle, session))
        if deadline < self._scope.deadline:
            self._scope.deadline = deadline

    async def run(self) -> None:
        """Sleep until the earliest deadline, fire what is due, repeat; runs for the node's life."""
        heap = self._heap
        while True:
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as self._scope:
                await trio.sleep_forever()
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                _, _, handle, session = heapq.heappop(heap)
                self._fire(handle, session)
