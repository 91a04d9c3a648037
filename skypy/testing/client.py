"""FakeClient: a TCP client that speaks the gate's framing, for integration tests."""

from __future__ import annotations

import socket as stdsocket
from collections import deque

import trio

from .. import netpack

DEFAULT_TIMEOUT = 10.0


class FakeClient:
    """One client connection; packets are netpack frames (a 2-byte length, then the body).

        async with await FakeClient.connect(port) as client:
            await client.send_packet(b"login alice")
            assert await client.recv_packet() == b"joined alice"

    Reads wait at most `timeout` seconds (trio.TooSlowError), so a test that
    expects a packet that never comes fails instead of hanging.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._decoder = netpack.PacketDecoder()
        self._packets: deque[bytes] = deque()
        self._eof = False

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1", *, rcvbuf: int | None = None) -> FakeClient:
        """Connect to `host`:`port`; `rcvbuf` shrinks the kernel's receive buffer
        (for a client that never reads and should back up the server quickly)."""
        sock = trio.socket.socket(stdsocket.AF_INET, stdsocket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, rcvbuf)
            await sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return cls(trio.SocketStream(sock))

    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # --- sending ----------------------------------------------------------

    async def send_packet(self, body: bytes | str) -> None:
        """Send one framed packet; a str is sent as UTF-8."""
        await self.send_raw(netpack.pack(body.encode() if isinstance(body, str) else body))

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are: half a frame, a lying header, garbage."""
        await self.stream.send_all(data)

    async def half_close(self) -> None:
        """Send FIN: the server sees the end of the stream, and can still answer."""
        await self.stream.send_eof()

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self.stream.aclose()

    # --- receiving --------------------------------------------------------

    async def recv_packet(self, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """The next packet; EOFError if the server closed first, TooSlowError after `timeout`."""
        with trio.fail_after(timeout):
            while not self._packets:
                if not await self._receive():
                    raise EOFError(f"the server closed the connection ({self._decoder.pending} bytes of a packet left)")
        return self._packets.popleft()

    async def recv_eof(self, timeout: float = DEFAULT_TIMEOUT) -> list[bytes]:
        """Read until the server closes the connection; the packets that came first."""
        with trio.fail_after(timeout):
            while await self._receive():
                pass
        packets = list(self._packets)
        self._packets.clear()
        return packets

    async def _receive(self) -> bool:
        if self._eof:
            return False
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:
            data = b""  # a reset is an end too
        if not data:
            self._eof = True
            return False
        self._packets.extend(self._decoder.feed(data))
        return True
