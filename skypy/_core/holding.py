"""A mailbox that holds requests back while letting answers through: a service being reloaded.

While a reload runs a service's new code, which may suspend (a call, a
sleep), the requests that arrive must wait for the new code, but answers
must not: the reload's own calls and the old code's suspended coroutines
are waiting for them. `Service.hold_requests` swaps the service's mailbox
for a `HoldingMailbox` and `release_requests` swaps the one it replaced
back (a plain deque, or a `BoundedMailbox`), refilled, so the send and
dispatch paths pay nothing when no service is held: they see a deque
either way, and only `append` (here) sorts.
"""

from __future__ import annotations

from collections import deque

from .message import PTYPE_ERROR, PTYPE_RESPONSE, RawMessage


class HoldingMailbox(deque[RawMessage]):
    """Answers queue here as usual; every other message is kept aside in arrival order."""

    def __init__(self, queued: deque[RawMessage]) -> None:
        super().__init__()
        # The mailbox this one stands in for, given back refilled by `released`.
        self.replaced = queued
        # Each held message, with how many answers had arrived before it, so
        # that `released` puts it back where it came among those still queued.
        self.held: list[tuple[int, RawMessage]] = []
        self.answers = 0
        for msg in queued:
            self.append(msg)

    def append(self, msg: RawMessage) -> None:
        ptype = msg[2]
        if ptype == PTYPE_RESPONSE or ptype == PTYPE_ERROR:
            self.answers += 1
            super().append(msg)
        else:
            self.held.append((self.answers, msg))

    def released(self) -> deque[RawMessage]:
        """The replaced mailbox holding everything still queued, in arrival order: held messages
        among the answers not yet taken."""
        merged: deque[RawMessage] = deque()
        position = self.answers - len(self)  # how many answers came before the first still queued
        answers = iter(self)
        for before, msg in self.held:
            while position < before:
                merged.append(next(answers))
                position += 1
            merged.append(msg)
        merged.extend(answers)
        # deque's own clear and extend: a bound refuses new messages, not those it already took.
        deque.clear(self.replaced)
        deque.extend(self.replaced, merged)
        return self.replaced
