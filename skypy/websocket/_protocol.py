"""One WebSocket connection's protocol, sans I/O: wsproto's frames, plus the rules skypy adds.

wsproto parses and makes frames and runs the opening handshake; this module
assembles messages from their fragments, refuses one over
`max_message_size` (close 1009, counted as the fragments come, so an
oversized frame is refused before it has all arrived), answers pings and
the peer's close, and remembers why the connection closed. Every call
returns the bytes to write; the I/O shell (websocket/__init__.py) writes
them and reads.
"""

from __future__ import annotations

from collections import deque

import attrs
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request as WSRequest,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

__all__ = ["CloseInfo", "ClientHandshake", "MessageProtocol", "accept"]

NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
NO_STATUS = 1005
ABNORMAL = 1006  # the transport ended with no close frame: never sent on the wire
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011


@attrs.frozen
class CloseInfo:
    """Why a connection closed: the close code and reason, and whether the peer started it."""

    code: int
    reason: str
    by_peer: bool


class MessageProtocol:
    """An open WebSocket connection: `receive` bytes, take `messages`, `send` and `close` to get bytes to write."""

    def __init__(self, ws: WSConnection, max_message_size: int) -> None:
        self._ws = ws
        self.max_message_size = max_message_size
        self.messages: deque[str | bytes] = deque()
        self.closed: CloseInfo | None = None
        self._parts: list[str | bytes] = []
        self._size = 0

    def receive(self, data: bytes | None) -> bytes:
        """Bytes from the peer (None: the transport ended); the bytes to write back (pongs, close frames)."""
        if self.closed is not None and self._ws.state is ConnectionState.CLOSED:
            return b""
        self._ws.receive_data(data)
        out = []
        for event in self._ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                payload = event.data
                part = payload if isinstance(payload, str) else bytes(payload)
                out.append(self._fragment(part, event.message_finished))
                if self.closed is not None:
                    break
            elif isinstance(event, Ping):
                out.append(self._send(event.response()))
            elif isinstance(event, CloseConnection):
                if self.closed is None:
                    self.closed = CloseInfo(event.code, event.reason or "", by_peer=True)
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    out.append(self._send(event.response()))
        return b"".join(out)

    def _fragment(self, data: str | bytes, finished: bool) -> bytes:
        self._size += len(data)  # characters of text: at most a quarter of the bytes they came in
        if self._size > self.max_message_size:
            self._parts.clear()
            return self.close(MESSAGE_TOO_BIG, f"message over {self.max_message_size} bytes")
        self._parts.append(data)
        if finished:
            parts, self._parts, self._size = self._parts, [], 0
            self.messages.append(parts[0] if len(parts) == 1 else type(parts[0])().join(parts))  # type: ignore[arg-type]
        return b""

    def _send(self, event: object) -> bytes:
        try:
            return self._ws.send(event)  # type: ignore[arg-type]
        except LocalProtocolError:
            return b""  # the connection closed meanwhile: nothing more goes out

    def send(self, message: str | bytes) -> bytes:
        """The frame for one message; None-safe only while open (check `closed` first)."""
        event = TextMessage(data=message) if isinstance(message, str) else BytesMessage(data=message)
        return self._send(event)

    def close(self, code: int = NORMAL, reason: str = "") -> bytes:
        """Start (or finish) the closing handshake; the close frame, or b"" if one went already."""
        if self.closed is None:
            self.closed = CloseInfo(code, reason, by_peer=False)
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            return self._send(CloseConnection(code=code, reason=reason))
        return b""

    @property
    def finished(self) -> bool:
        """True once both sides have sent their close frame (or the transport ended)."""
        return self._ws.state is ConnectionState.CLOSED

    def transport_ended(self) -> None:
        """The socket closed under us: a peer that sent no close frame closed abnormally (1006)."""
        if self.closed is None:
            self.closed = CloseInfo(ABNORMAL, "connection closed with no close frame", by_peer=True)
        if self._ws.state is not ConnectionState.CLOSED:
            self._ws.receive_data(None)
            for _ in self._ws.events():
                pass


def accept(headers: dict[str, str], target: str, trailing: bytes, max_message_size: int) -> tuple[bytes, MessageProtocol]:
    """The server's side of the opening handshake, from a request already parsed as HTTP:
    the 101 response and the open connection. ValueError if the request is no valid upgrade."""
    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.initiate_upgrade_connection([(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()], target)
        events = list(ws.events())
        if not events or not isinstance(events[0], WSRequest):
            raise ValueError("not a WebSocket upgrade request")
        response = ws.send(AcceptConnection())
    except (RemoteProtocolError, LocalProtocolError) as exc:
        raise ValueError(f"bad WebSocket upgrade: {exc}") from None
    protocol = MessageProtocol(ws, max_message_size)
    if trailing:
        response += protocol.receive(trailing)
    return response, protocol


class ClientHandshake:
    """The client's side of the opening handshake: `request` bytes to write, then `receive` the answer."""

    def __init__(self, host: str, target: str, headers: dict[str, str] | None = None) -> None:
        self._ws = WSConnection(ConnectionType.CLIENT)
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        self.request = self._ws.send(WSRequest(host=host, target=target, extra_headers=extra))
        self.rejected: int | None = None  # the status of a refusal

    def receive(self, data: bytes, max_message_size: int) -> MessageProtocol | None:
        """Feed the server's answer; the open connection once accepted, else None (more needed, or `rejected`).

        ValueError if the answer breaks the protocol."""
        try:
            self._ws.receive_data(data or None)
            for event in self._ws.events():
                if isinstance(event, AcceptConnection):
                    return MessageProtocol(self._ws, max_message_size)
                if isinstance(event, RejectConnection):
                    self.rejected = event.status_code
                    return None
                if isinstance(event, (RejectData, CloseConnection)):
                    self.rejected = self.rejected or 0
                    return None
        except (RemoteProtocolError, LocalProtocolError) as exc:
            raise ValueError(f"bad WebSocket handshake answer: {exc}") from None
        return None
