"""One socket's unsent data: skynet's high and low priority write lists.

Sans I/O: the socket server pushes what services write, hands `peek()` to the
kernel and reports back with `consume(n)`; this module only decides the order.
"""

from __future__ import annotations

import enum
from collections import deque

__all__ = ["COALESCE_BYTES", "WARNING_BYTES", "SendQueue"]

WARNING_BYTES = 1 << 20
"""Queued bytes that first earn the owner a WARNING; each doubling earns another."""

COALESCE_BYTES = 64 * 1024
"""`peek()` joins whole small packets into one view of at most this many bytes."""


class _Cleared(enum.Enum):
    """The plan of a peek() whose queue clear() dropped while the kernel had the view."""

    CLEARED = "cleared"


class SendQueue:
    """The bytes written to one socket and not yet taken by the kernel.

    High packets (skynet's `write`) go before low ones (`lwrite`), but packets
    never interleave: once the kernel has taken part of a packet, the rest of
    that packet goes next, whatever was queued since. `size` (and `len()`) is
    the unsent byte count: an attribute, as the write path asks on every write.
    """

    __slots__ = ("_high", "_low", "_head", "_head_sent", "size", "_plan", "_warn_at", "_warned")

    def __init__(self) -> None:
        self._high: deque[bytes] = deque()
        self._low: deque[bytes] = deque()
        # The packet the kernel has taken part of, out of both lists: it must
        # finish before any other starts, high or low.
        self._head: bytes | None = None
        self._head_sent = 0
        self.size = 0
        # What the last peek() covered: (bytes, whole high packets, whole low
        # packets) after the head. consume() needs the split because high
        # packets pushed after the peek land behind bytes already handed out.
        self._plan: tuple[int, int, int] | _Cleared | None = None
        self._warn_at = WARNING_BYTES
        self._warned = False

    def __len__(self) -> int:
        return self.size

    def push(self, data: bytes | bytearray | memoryview, *, high: bool = True) -> int | None:
        """Queue a packet; return the queued size if it just crossed a WARNING threshold."""
        if not data:
            return None
        if type(data) is not bytes:
            # Copied because the writer may reuse its buffer before it is sent;
            # bytes are kept as they are, so the usual case copies nothing.
            data = bytes(data)
        (self._high if high else self._low).append(data)
        self.size += len(data)
        if self.size < self._warn_at:
            return None
        # One warning per push, then wait for the next doubling past the size
        # now queued: a single 5 MiB write warns once, next at 8 MiB (skynet
        # would warn on each of the next pushes, at 2 and then 4 MiB).
        while self._warn_at <= self.size:
            self._warn_at *= 2
        self._warned = True
        return self.size

    def peek(self) -> memoryview:
        """The next bytes to hand the kernel, in wire order; empty when nothing is queued.

        The view stays valid while the kernel works, whatever is pushed meanwhile.
        """
        # Small packets are joined, up to COALESCE_BYTES, to save a send each:
        # measured, a trio `sock.send` of 100 bytes costs ~18 us, joining 655
        # such packets into 64 KiB ~4 us. A lone packet, or one too big to
        # join, is handed over as it is, never copied. After a partial write
        # the rest is joined again, at most 64 KiB copied per send.
        high, low = self._high, self._low
        if self._head is None and len(high) + len(low) == 1:
            # The usual case (an echo, a reply): one packet, nothing to join.
            packet = (high or low)[0]
            self._plan = (len(packet), len(high), len(low))
            return memoryview(packet)
        parts: list[bytes | memoryview] = []
        size = 0
        if self._head is not None:
            parts.append(memoryview(self._head)[self._head_sent :])
            size = len(self._head) - self._head_sent
        counts = [0, 0]
        for i, queue in enumerate((high, low)):
            for packet in queue:
                if parts and size + len(packet) > COALESCE_BYTES:
                    break
                parts.append(packet)
                size += len(packet)
                counts[i] += 1
            if counts[i] < len(queue):
                break  # no low packet may pass a high one left out
        self._plan = (size, counts[0], counts[1])
        if len(parts) == 1:
            return memoryview(parts[0])
        return memoryview(b"".join(parts))

    def consume(self, sent: int) -> int | None:
        """The kernel took the first `sent` bytes of the last peek(); return 0 if that
        drained a queue that had warned (the owner then gets WARNING 0)."""
        if self._plan is None:
            raise RuntimeError("consume() counts bytes of the view from peek(); call peek() first")
        if self._plan is _Cleared.CLEARED:
            self._plan = None  # those bytes went out, but their queue is gone
            return None
        size, high_count, low_count = self._plan
        if not 0 <= sent <= size:
            raise ValueError(f"the kernel cannot have taken {sent} bytes of a {size}-byte peek()")
        self._plan = None
        self.size -= sent
        if self._head is not None:
            rest = len(self._head) - self._head_sent
            if sent < rest:
                self._head_sent += sent
                return None
            sent -= rest
            self._head = None
            self._head_sent = 0
        sent = self._drop_sent(self._high, high_count, sent)
        self._drop_sent(self._low, low_count, sent)
        if self.size == 0 and self._warned:
            self._reset_warnings()
            return 0
        return None

    def _drop_sent(self, queue: deque[bytes], count: int, sent: int) -> int:
        """Drop the packets the kernel took from `queue`'s first `count`; return what is left
        of `sent`. A packet it took part of becomes the head."""
        while sent and count:
            packet = queue.popleft()
            count -= 1
            if sent < len(packet):
                self._head = packet
                self._head_sent = sent
                return 0
            sent -= len(packet)
        return sent

    def clear(self) -> int:
        """Drop everything unsent (a shutdown); return how many bytes were dropped.

        No WARNING 0 follows: the socket is going away, not draining. A send
        in flight may still report with consume(), which then does nothing.
        """
        dropped = self.size
        self._high.clear()
        self._low.clear()
        self._head = None
        self._head_sent = 0
        self.size = 0
        self._plan = None if self._plan is None else _Cleared.CLEARED
        self._reset_warnings()
        return dropped

    def _reset_warnings(self) -> None:
        self._warn_at = WARNING_BYTES
        self._warned = False
