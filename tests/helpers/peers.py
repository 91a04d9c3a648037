"""Peers for the socket tests: a listener in the test's own service, plain clients, and what they send."""

from __future__ import annotations

import socket as stdsocket
import time

import trio

from skypy import socket

# Seconds a peer waits for what it expects before the test fails.
TIMEOUT = 10.0


class Listener:
    """A skypy listening socket owned by the test body; `connect` makes a client and its server id."""

    def __init__(self, id: int, host: str, port: int, accepted: trio.MemoryReceiveChannel) -> None:
        self.id = id
        self.host = host
        self.port = port
        self._accepted = accepted

    async def accepted(self, timeout: float = TIMEOUT) -> int:
        """The id of the next connection the listener accepted."""
        with trio.fail_after(timeout):
            return await self._accepted.receive()

    async def connect(self, start: bool = True) -> tuple[trio.SocketStream, int]:
        """A trio client and the id of its accepted connection (started by the test body unless not)."""
        client = await trio.open_tcp_stream(self.host, self.port)
        id = await self.accepted()
        if start:
            await socket.start(id)
        return client, id

    async def connect_blocking(self) -> tuple[stdsocket.socket, int]:
        """A blocking stdlib client, for a peer run in a thread, and its started id;
        its reads fail after TIMEOUT seconds with nothing to read."""
        client = stdsocket.create_connection((self.host, self.port), timeout=TIMEOUT)
        id = await self.accepted()
        await socket.start(id)
        return client, id


async def receive_all(stream: trio.SocketStream, timeout: float = TIMEOUT) -> bytes:
    """Everything the peer sends until EOF."""
    parts = []
    with trio.fail_after(timeout):
        while chunk := await stream.receive_some(1 << 20):
            parts.append(chunk)
    return b"".join(parts)


def read_slowly(sock: stdsocket.socket, chunk: int = 256 << 10, pause: float = 0.0005) -> bytes:
    """A peer that reads in small steps with pauses, until EOF (run it in a thread)."""
    parts = []
    while data := sock.recv(chunk):
        parts.append(data)
        time.sleep(pause)
    return b"".join(parts)


def pattern(size: int) -> bytes:
    """`size` bytes that show where a byte came from, so a lost or reordered block is caught."""
    block = bytes(range(251))
    return (block * (size // len(block) + 1))[:size]


def socket_info(id: int) -> dict | None:
    """The server's counters for `id`, or None once the id is released."""
    return next((entry for entry in socket.info() if entry["id"] == id), None)


def queue_until(id: int, least: int) -> bytes:
    """Write to `id` (whose peer does not read) until at least `least` bytes wait in its queue."""
    written = []
    block = pattern(256 << 10)
    while socket_info(id)["queued"] < least:
        assert socket.write(id, block)
        written.append(block)
    return b"".join(written)
