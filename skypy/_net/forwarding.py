"""Forwarding: the socket server cuts a connection's input into netpack packets and sends
each straight to the service that consumes them, as skynet's gate sends its clients'
packets to their agents.

A gate that read its connections itself would be a service step between
every read and the agent: a mailbox, a run, a dispatch and a redirect per
packet, in Python. Here the bytes are framed where they are read, and each
packet goes into the consumer's mailbox as the gate's redirect would have
put it there; the gate keeps what it is for, deciding where the packets go.

The consumer's mailbox is the bound: once more than `maxqueue` messages wait
there, the rest of the read is held, reading pauses (TCP then holds the
client back), and the socket's owner hears BEHIND; skypy.socket resumes it
once the consumer has taken what was queued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..netpack import PacketDecoder

if TYPE_CHECKING:
    from .._core.node import Node

# Messages that may wait for a forwarded connection's consumer before its reading pauses.
MAXQUEUE = 1024
# A long read is cut this many bytes at a time, the consumer's queue looked at
# in between: empty packets are 2 bytes each, and one read of them must not
# queue half a million messages before reading can pause.
SLICE = 4 << 10


class Forwarding:
    """Where one connection's packets go, and what of its input is read but not yet sent.

    Each packet is posted to `dest` as ``(source, 0, ptype, pack(*head, packet))``:
    what ``redirect(dest, source, ptype, 0, *head, packet)`` posts from the
    service that set the forwarding up (`pack` is its packer of `ptype`, if any).
    """

    __slots__ = ("decoder", "held", "dest", "source", "ptype", "pack", "head", "maxqueue")

    def __init__(self) -> None:
        self.decoder = PacketDecoder()
        self.held = b""  # read, not yet cut: the consumer was behind
        self.dest = 0
        self.source = 0
        self.ptype = 0
        self.pack: Callable[..., Any] | None = None
        self.head: tuple[Any, ...] = ()
        self.maxqueue = MAXQUEUE

    def redirect(
        self, dest: int, source: int, ptype: int, pack: Callable[..., Any] | None,
        head: tuple[Any, ...], maxqueue: int,
    ) -> None:
        """Send the packets to come, and the rest of one cut in half, as described above."""
        self.dest = dest
        self.source = source
        self.ptype = ptype
        self.pack = pack
        self.head = head
        self.maxqueue = maxqueue

    def unsent(self) -> bytes:
        """What was read and not sent on (an unfinished packet, what is held), given up for
        whoever reads the connection next."""
        held, self.held = self.held, b""
        return self.decoder.take_pending() + held

    def deliver(self, node: Node, data: bytes) -> bool:
        """Send on the packets `data` completes (after what is held); False once the consumer is
        behind, with the rest held for the next call.

        The consumer's queue is looked at after each slice, so it passes
        `maxqueue` by one slice's packets at most.
        """
        if self.held:
            data, self.held = self.held + data, b""
        post, dest, source, ptype, pack, head = node.post, self.dest, self.source, self.ptype, self.pack, self.head
        end = len(data)
        whole = end <= SLICE  # the usual read: cut in one go
        view = data if whole else memoryview(data)
        start = 0
        while True:
            for packet in self.decoder.feed(data if whole else view[start : start + SLICE]):
                payload = (*head, packet)
                post(dest, (source, 0, ptype, payload if pack is None else pack(*payload)))
            start += SLICE
            consumer = node.services.get(dest)
            if consumer is not None and len(consumer.mailbox) > self.maxqueue:
                if start < end:
                    self.held = bytes(view[start:])
                return False
            if start >= end:
                return True
