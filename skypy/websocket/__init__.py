"""skypy.websocket: WebSocket connections over skypy.socket, server side and client side.

    from skypy import http, websocket

    @app.websocket("/echo")                       # on an http.Router
    async def echo(ws: websocket.WebSocket) -> None:
        while True:
            ws.send(await ws.receive())           # Closed when the peer goes

    ws = await websocket.connect("ws://127.0.0.1:8080/echo")
    ws.send("hello")
    assert await ws.receive() == "hello"
    await ws.close()

Every byte goes through the node's socket server (skypy.socket), so
`netstat`, `limit` and the close protocol apply. Pings are answered
without user code; a message over `max_message_size` closes the connection
with 1009. A closed or broken peer raises `Closed`, carrying the close code
and reason, in the coroutine reading first; `send` on a closed connection
raises it too.
"""

from __future__ import annotations

import trio

from .. import socket
from .._weburl import split_url
from ..errors import SkypyError
from ._protocol import NORMAL, ClientHandshake, MessageProtocol, accept

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Closed", "HandshakeError", "WebSocket", "connect", "open_upgraded"]

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
# How long `close` waits for the peer's close frame before closing the socket anyway.
CLOSE_TIMEOUT = 5.0


class Closed(SkypyError):
    """The connection is closed: `code` and `reason` say why (1006: it broke with no close frame)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class HandshakeError(SkypyError):
    """`connect` failed: the server refused the upgrade, or did not answer as WebSocket."""


class WebSocket:
    """One open WebSocket connection on a socket id this service has started."""

    def __init__(self, id: int, protocol: MessageProtocol) -> None:
        self.id = id
        self._protocol = protocol
        self._reading = False

    @property
    def closed(self) -> Closed | None:
        """Why the connection closed, or None while it is open."""
        info = self._protocol.closed
        return None if info is None else Closed(info.code, info.reason)

    async def receive(self) -> str | bytes:
        """The next message: str for text, bytes for binary. Closed once the connection has closed."""
        protocol = self._protocol
        while not protocol.messages:
            if protocol.closed is not None:
                await self._finish()
                raise Closed(protocol.closed.code, protocol.closed.reason)
            self._reading = True
            try:
                data = await socket.read(self.id)
            except socket.SocketClosed as exc:
                data = exc.rest
                protocol.transport_ended()
            finally:
                self._reading = False
            if data:
                out = protocol.receive(data)
                if out:
                    socket.write(self.id, out)
        return protocol.messages.popleft()

    def send(self, message: str | bytes) -> None:
        """Send one message (str as text, bytes as binary), never blocking; Closed if the connection is closed."""
        closed = self.closed
        if closed is not None:
            raise closed
        socket.write(self.id, self._protocol.send(message))

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Close with `code` and `reason`: send the close frame, wait (a while) for the peer's, close the socket.

        A coroutine blocked in `receive` raises Closed. Closing again does nothing."""
        out = self._protocol.close(code, reason)
        if out:
            socket.write(self.id, out)
        await self._finish()

    async def _finish(self) -> None:
        """The closing handshake's end: read the peer's close frame unless another coroutine reads, then close the socket."""
        protocol = self._protocol
        if not self._reading:
            with trio.move_on_after(CLOSE_TIMEOUT):
                while not protocol.finished:
                    try:
                        data = await socket.read(self.id)
                    except socket.SocketClosed:
                        protocol.transport_ended()
                        break
                    protocol.messages.clear()
                    out = protocol.receive(data)
                    if out:
                        socket.write(self.id, out)
        await socket.close(self.id, CLOSE_TIMEOUT)

    async def __aenter__(self) -> WebSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def open_upgraded(
    id: int, headers: dict[str, str], target: str, trailing: bytes, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> WebSocket:
    """Accept a WebSocket upgrade on `id` whose HTTP request is already parsed (skypy.http does this):
    writes the 101 answer. ValueError if the request is no valid upgrade."""
    response, protocol = accept(headers, target, trailing, max_message_size)
    socket.write(id, response)
    return WebSocket(id, protocol)


async def connect(
    url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> WebSocket:
    """Open a client connection to a ``ws://host:port/path`` URL.

    HandshakeError, or SocketError from opening the socket, each naming the
    host; trio.TooSlowError if the handshake takes over `timeout` seconds."""
    host, port, target = split_url(url, "ws")
    with trio.fail_after(timeout):
        id = await socket.open(host, port)
        try:
            return await _handshake(id, f"{host}:{port}", target, headers, max_message_size, url)
        except BaseException:
            socket.shutdown(id)
            await socket.close(id)
            raise


async def _handshake(
    id: int, host: str, target: str, headers: dict[str, str] | None, max_message_size: int, url: str
) -> WebSocket:
    handshake = ClientHandshake(host, target, headers)
    socket.write(id, handshake.request)
    while True:
        try:
            data = await socket.read(id)
        except socket.SocketClosed:
            raise HandshakeError(f"{url}: {host} closed the connection during the handshake") from None
        try:
            protocol = handshake.receive(data, max_message_size)
        except ValueError as exc:
            raise HandshakeError(f"{url}: {host}: {exc}") from None
        if protocol is not None:
            ws = WebSocket(id, protocol)
            out = protocol.receive(b"")  # frames that came with the answer
            if out:
                socket.write(id, out)
            return ws
        if handshake.rejected is not None:
            raise HandshakeError(f"{url}: {host} refused the upgrade (status {handshake.rejected})")


