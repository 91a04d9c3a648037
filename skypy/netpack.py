"""netpack framing: a 2-byte big-endian length, then that many bytes of body.

The gate frames client packets this way and the cluster protocol frames its
messages the same way, so this module knows nothing about either: it only
turns bodies into frames and a byte stream back into bodies.
"""

from __future__ import annotations

import struct

__all__ = ["HEADER_SIZE", "MAX_BODY", "PacketDecoder", "PacketTooLarge", "pack"]

_HEADER = struct.Struct(">H")
HEADER_SIZE = _HEADER.size
MAX_BODY = 0xFFFF


class PacketTooLarge(ValueError):
    """A body longer than the 2-byte header can describe (`size` says how long)."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"packet body is {size} bytes, over netpack's limit of {MAX_BODY}; "
            "split it into several packets"
        )
        self.size = size


def pack(body: bytes | bytearray | memoryview) -> bytes:
    """Frame `body` for the wire: its length as 2 big-endian bytes, then the body."""
    size = len(body)
    if size > MAX_BODY:
        raise PacketTooLarge(size)
    return _HEADER.pack(size) + body


class PacketDecoder:
    """Cuts a byte stream into netpack bodies, whatever the boundaries of the reads.

    Sans I/O: the owner feeds it what the socket read and sends on what comes back.
    """

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        # The start of an unfinished frame, header included. Whole frames are
        # sliced straight out of the chunk that holds them; only a frame cut by
        # a read boundary is copied here, and only up to its own end, so a big
        # chunk is never appended to a buffer just to be cut up again.
        self._partial = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held from an unfinished frame (header included)."""
        return len(self._partial)

    def take_pending(self) -> bytes:
        """The bytes held from an unfinished frame, given up: for whoever reads the stream on."""
        partial = bytes(self._partial)
        self._partial.clear()
        return partial

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[bytes]:
        """Take the next bytes of the stream; return the bodies it completed, in order."""
        if type(chunk) is not bytes:
            # Our slices must outlive the caller's (maybe reused) buffer.
            chunk = bytes(chunk)
        end = len(chunk)
        if not self._partial and end >= HEADER_SIZE and _HEADER.unpack_from(chunk)[0] == end - HEADER_SIZE:
            return [chunk[HEADER_SIZE:]]  # the usual read: one whole frame
        packets: list[bytes] = []
        pos = self._finish_partial(chunk, packets) if self._partial else 0
        while end - pos >= HEADER_SIZE:
            start = pos + HEADER_SIZE
            stop = start + _HEADER.unpack_from(chunk, pos)[0]
            if stop > end:
                break
            packets.append(chunk[start:stop])
            pos = stop
        if pos < end:
            self._partial += memoryview(chunk)[pos:]
        return packets

    def _finish_partial(self, chunk: bytes, packets: list[bytes]) -> int:
        """Complete the held frame from the front of `chunk`; return how much of it was used."""
        partial = self._partial
        used = 0
        if len(partial) < HEADER_SIZE:
            used = HEADER_SIZE - len(partial)
            partial += chunk[:used]
            if len(partial) < HEADER_SIZE:
                return len(chunk)
        size: int = _HEADER.unpack_from(partial)[0]
        need = HEADER_SIZE + size - len(partial)
        if len(chunk) - used < need:
            partial += memoryview(chunk)[used:]
            return len(chunk)
        partial += memoryview(chunk)[used : used + need]
        with memoryview(partial) as view:
            packets.append(bytes(view[HEADER_SIZE:]))
        partial.clear()
        return used + need
