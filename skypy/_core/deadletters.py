"""Dead letters: messages sent to an address with no service, counted, and logged sparingly.

A sender that keeps sending to a service that has gone (a broadcast loop,
a timer that outlived its target) would otherwise write one log line per
message and bury the log: each (sender, address) pair is logged at most
once per `LOG_INTERVAL`, with how many were dropped since, and the node
counts them all for `stat`.
"""

from __future__ import annotations

from typing import Callable

# Seconds between two log lines for the same sender and dead address.
LOG_INTERVAL = 1.0
# Pairs remembered at most; past that the oldest half is forgotten (they
# only risk one extra line each).
MAX_PAIRS = 4096


class DeadLetters:
    """How many messages went to dead addresses, and when each (sender, address) pair was last logged."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.count = 0
        self._clock = clock
        # (source, dest) -> [time last logged, drops not yet logged]
        self._pairs: dict[tuple[int, int], list[float]] = {}

    def dropped(self, source: int, dest: int) -> int:
        """Count one dead letter; how many of this pair to log now, or 0 to stay quiet."""
        self.count += 1
        now = self._clock()
        pair = self._pairs.get((source, dest))
        if pair is None:
            if len(self._pairs) >= MAX_PAIRS:
                for key in list(self._pairs)[: MAX_PAIRS // 2]:
                    del self._pairs[key]
            self._pairs[(source, dest)] = [now, 0]
            return 1
        pair[1] += 1
        if now - pair[0] < LOG_INTERVAL:
            return 0
        unlogged = int(pair[1])
        pair[0], pair[1] = now, 0
        return unlogged
