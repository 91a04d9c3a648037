"""A mailbox with a bound: past it, requests are refused at once and sends dropped.

`skypy.mailbox_limit` swaps a service's mailbox for a `BoundedMailbox`, as
a reload swaps in a `HoldingMailbox`, rather than have `Node.post` test a
limit on every message: the send path of a service with no bound pays
nothing, and only `append` (here) counts. Answers always get in: a
coroutine of the service waits for each of them.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Iterable

from ..errors import Overloaded
from .holding import HoldingMailbox
from .message import PTYPE_ERROR, PTYPE_RESPONSE, RawMessage, address

if TYPE_CHECKING:
    from .node import Node
    from .service import Service


class BoundedMailbox(deque[RawMessage]):
    """Holds at most `limit` requests and sends; a call past it fails with Overloaded, a send is dropped."""

    def __init__(self, node: Node, handle: int, limit: int, queued: Iterable[RawMessage] = ()) -> None:
        super().__init__(queued)
        self.node = node
        self.handle = handle
        self.limit = limit
        self.dropped = 0  # messages refused, for the debug STAT

    def append(self, msg: RawMessage) -> None:
        if len(self) >= self.limit:
            source, session, ptype, _ = msg
            if ptype != PTYPE_RESPONSE and ptype != PTYPE_ERROR:
                self.dropped += 1
                if session:
                    refusal = Overloaded(
                        f"call to {address(self.handle)} refused: {len(self)} messages queued,"
                        f" its mailbox_limit is {self.limit}"
                    )
                    self.node.post(source, (self.handle, session, PTYPE_ERROR, refusal))
                return
        super().append(msg)


def set_limit(svc: Service, limit: int | None) -> None:
    """Bound `svc`'s mailbox at `limit` messages (None: no bound), keeping what is queued.

    During a reload the bound goes on the mailbox the held one stands in
    for, which the service gets back when the reload ends.
    """
    held = svc.mailbox if isinstance(svc.mailbox, HoldingMailbox) else None
    mailbox = svc.mailbox if held is None else held.replaced
    if limit is not None and isinstance(mailbox, BoundedMailbox):
        mailbox.limit = limit
        return
    new = deque(mailbox) if limit is None else BoundedMailbox(svc.node, svc.handle, limit, mailbox)
    if held is None:
        svc.mailbox = new
    else:
        held.replaced = new
