"""The server side of an HTTP/1.1 connection, sans I/O: bytes in, requests and response bytes out.

h11 keeps HTTP/1.1's rules (framing, keep-alive, pipelining, HEAD, chunked
bodies both ways); this module adds the server's own decisions on top of
it, so that the I/O shell (server.py) only moves bytes and runs handlers:
the limits (a head over `max_header_size` is 431, a body over
`max_body_size` is 413, refused from its Content-Length alone, before a
byte of it is read or a ``100 Continue`` is sent), which timeout applies
while it waits (`Phase`), the answer to a request that breaks the protocol
(400, then close), and when a connection may carry another request.
One shortcut: a response h11 would have nothing to decide in (a bytes
body to a plain keep-alive request) is made here, as the very bytes h11
makes, because h11's send path costs more than its parsing does.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote

import attrs
import h11

from ._message import Request

__all__ = ["Closed", "Limits", "NeedData", "Phase", "Ready", "Reject", "Send", "ServerProtocol"]


@attrs.frozen
class Limits:
    """What one connection may cost the server: sizes in bytes, times in seconds (a timeout is
    noticed within a quarter of the shortest of them, and at most a second, after it ran out)."""

    max_header_size: int = 64 << 10  # the request line and headers: past it, 431
    max_body_size: int = 8 << 20  # past it, 413 (a larger Content-Length is refused unread)
    header_timeout: float = 10.0  # from a request's first byte to the end of its head: then 408
    idle_timeout: float = 60.0  # waiting for a next request, or for more of a body


class Phase(enum.Enum):
    """What the connection waits for, which says which timeout applies."""

    IDLE = "idle"  # a request's first byte: idle_timeout, then close quietly
    HEAD = "head"  # the rest of a head: header_timeout, then 408
    BODY = "body"  # more of a body: idle_timeout, then 408


@attrs.frozen
class NeedData:
    """Feed more bytes (b"" for the peer's end of stream) before asking again."""

    phase: Phase


@attrs.frozen
class Send:
    """Write these bytes (a ``100 Continue``), then ask again."""

    data: bytes


@attrs.frozen
class Reject:
    """Write this error response, then close the connection."""

    data: bytes
    status: int


@attrs.frozen
class Ready:
    """A whole request; answer it with `head`, `body` and `end`. `upgrade` names
    the protocol it asks to switch to (lower case), or is None."""

    request: Request
    upgrade: str | None


@attrs.frozen
class Closed:
    """Nothing more will come: close the connection."""


Event = NeedData | Send | Reject | Ready | Closed


# Reason phrases (RFC 9110). Written out rather than taken from the standard
# library's http.HTTPStatus, so that skypy.http imports no module named
# `http`, which a user's own http.py (bench/http.py is one) would hide.
_REASONS = {
    100: b"Continue", 101: b"Switching Protocols", 200: b"OK", 201: b"Created", 202: b"Accepted",
    204: b"No Content", 206: b"Partial Content", 301: b"Moved Permanently", 302: b"Found", 303: b"See Other",
    304: b"Not Modified", 307: b"Temporary Redirect", 308: b"Permanent Redirect", 400: b"Bad Request",
    401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed", 406: b"Not Acceptable",
    408: b"Request Timeout", 409: b"Conflict", 410: b"Gone", 411: b"Length Required", 413: b"Content Too Large",
    415: b"Unsupported Media Type", 422: b"Unprocessable Content", 426: b"Upgrade Required", 429: b"Too Many Requests",
    431: b"Request Header Fields Too Large", 500: b"Internal Server Error", 501: b"Not Implemented",
    502: b"Bad Gateway", 503: b"Service Unavailable", 504: b"Gateway Timeout",
}


def phrase(status: int) -> str:
    """The reason phrase for `status`, or "" for one not listed."""
    return _REASONS.get(status, b"").decode()


def error_bytes(status: int) -> bytes:
    """A complete error response that ends the connection, made without h11 (whose state may be broken)."""
    reason = phrase(status)
    body = f"{status} {reason}\n".encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def _header_dict(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


# A response header as h11 accepts one: the name an RFC 9110 token, the value
# visible characters (obs-text included) with single spaces or tabs inside.
# Checked on the responses made here without h11, so a value with a CR or LF
# in it (response splitting) goes to h11, which refuses it.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")
# Headers that frame the response or end the connection: h11 decides those.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})

# NeedData is frozen: one of each serves every connection.
_NEED_IDLE, _NEED_HEAD, _NEED_BODY = NeedData(Phase.IDLE), NeedData(Phase.HEAD), NeedData(Phase.BODY)


class ServerProtocol:
    """One server connection's HTTP state: feed it bytes, take its events, ask it for response bytes."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._h11 = self._new_h11()
        self._request: Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._head_only = False
        self._expects = False
        self._keep_alive = False
        self._empty = False  # a fresh h11 connection that has no bytes yet: it can only need data
        self._head_deadline: float | None = None

    def _new_h11(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_size)

    # --- receiving ----------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Bytes from the peer; b"" when it has closed its side."""
        self._empty = False
        self._h11.receive_data(data)

    def next_event(self) -> Event:
        """What the I/O shell does next."""
        if self._empty:
            return _NEED_IDLE  # what h11 would answer, without the cost of asking it
        conn = self._h11
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return Reject(error_bytes(exc.error_status_hint), exc.error_status_hint)
            kind = type(event)
            if event is h11.NEED_DATA:
                if conn.their_state is h11.SEND_BODY:
                    return _NEED_BODY
                return _NEED_HEAD if conn.trailing_data[0] else _NEED_IDLE
            if kind is h11.EndOfMessage:
                request = self._request
                assert request is not None
                if self._body:
                    request.body = b"".join(self._body)
                    self._body.clear()
                upgrade = request.headers.get("upgrade")
                return Ready(request, upgrade.lower() if upgrade else None)
            if event is h11.PAUSED or kind is h11.ConnectionClosed:
                return Closed()
            if kind is h11.Request:
                refused = self._start(event)  # type: ignore[arg-type]
                if refused is not None:
                    return refused
                # (h11's own check walks every header; most requests have no Expect at all.)
                if self._expects and conn.they_are_waiting_for_100_continue:
                    return Send(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
            elif kind is h11.Data:
                data = event.data  # type: ignore[union-attr]
                self._body_size += len(data)
                if self._body_size > self.limits.max_body_size:
                    return self._reject(413)
                self._body.append(bytes(data))

    def _start(self, event: h11.Request) -> Reject | None:
        target = event.target.decode("latin-1")
        path, _, query = target.partition("?")
        headers = _header_dict(event.headers)
        self._request = Request(
            method=event.method.decode("ascii"),
            path=unquote(path) if "%" in path else path,
            query=dict(parse_qsl(query, keep_blank_values=True)) if query else {},
            headers=headers,
            target=target,
            http_version=event.http_version.decode("ascii"),
        )
        self._head_only = event.method == b"HEAD"
        self._expects = "expect" in headers
        # h11's own rule, which it keeps private: a request keeps the connection
        # open unless it is HTTP/1.0 or says "Connection: close".
        connection = headers.get("connection")
        self._keep_alive = event.http_version >= b"1.1" and not (
            connection is not None and "close" in (token.strip().lower() for token in connection.split(","))
        )
        self._body_size = 0
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limits.max_body_size:
            return self._reject(413)  # before any of the body is read, and with no 100 Continue
        return None

    def _reject(self, status: int) -> Reject:
        self._body.clear()
        return Reject(error_bytes(status), status)

    def wait_time(self, phase: Phase, now: float) -> float:
        """How long the next read may wait, at time `now` (seconds): a head must be whole
        `header_timeout` after its first byte, however it trickles in."""
        if phase is not Phase.HEAD:
            self._head_deadline = None
            return self.limits.idle_timeout
        if self._head_deadline is None:
            self._head_deadline = now + self.limits.header_timeout
        return max(0.0, self._head_deadline - now)

    def timed_out(self, phase: Phase) -> bytes:
        """What to write when `phase`'s timeout ran out (the connection then closes): 408, or nothing when idle."""
        return b"" if phase is Phase.IDLE else error_bytes(408)

    # --- answering ------------------------------------------------------------------

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> bytes:
        """A whole response whose body is `body` (only its head for HEAD); then ask next_request."""
        made = self._plain_response(status, headers, body)
        if made is None:
            return self.head(status, headers, len(body)) + self.body(body) + self.end()
        # h11 still waits for our response: it is written, and a fresh h11
        # connection, the state start_next_cycle would leave, reads on from
        # the bytes that came after the request. next_request sees it begun.
        data, closed = self._h11.trailing_data
        self._h11 = self._new_h11()
        if data:
            self._h11.receive_data(data)
        if closed:
            self._h11.receive_data(b"")  # (b"" is h11's word for the peer's end of stream)
        self._empty = not data and not closed
        self._request = None
        return made

    def _plain_response(self, status: int, headers: dict[str, str], body: bytes) -> bytes | None:
        """The response's bytes, made here when h11 would have nothing to decide in them, else None.

        h11's send path (event objects, their validation, its state machine)
        costs more than parsing the request does. For a keep-alive request
        that is wholly read and not an upgrade, and a response with a status
        that has a body, headers h11 would accept unchanged and none of the
        framing ones, h11 makes exactly these bytes: the status line, the
        headers with lower-case names, content-length, the body.
        """
        if not (
            self._keep_alive and 200 <= status < 1000 and status != 204 and status != 304
            and self._h11.their_state is h11.DONE and self._h11.our_state is h11.SEND_RESPONSE
        ):
            return None
        lines = [f"HTTP/1.1 {status:d} {phrase(status)}\r\n"]
        for name, value in headers.items():
            key = name.lower()
            if key in _FRAMING or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
                return None
            lines.append(f"{key}: {value}\r\n")
        lines.append(f"content-length: {len(body)}\r\n\r\n")
        head = "".join(lines).encode("latin-1")
        return head if self._head_only else head + body

    def head(self, status: int, headers: dict[str, str], length: int | None) -> bytes:
        """The response's status line and headers; `length` is the body's, or None for a body sent in chunks."""
        fields = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        if length is not None and status >= 200 and status not in (204, 304) and all(f[0] != b"content-length" for f in fields):
            fields.append((b"content-length", str(length).encode()))
        reason = _REASONS.get(status, b"")
        return self._h11.send(h11.Response(status_code=status, headers=fields, reason=reason)) or b""

    def body(self, chunk: bytes) -> bytes:
        """A piece of the response body (nothing for HEAD, whose answer has only the head)."""
        if self._head_only or not chunk:
            return b""
        return self._h11.send(h11.Data(data=chunk)) or b""

    def end(self) -> bytes:
        """The end of the response."""
        return self._h11.send(h11.EndOfMessage()) or b""

    @property
    def head_only(self) -> bool:
        """True if the request being answered is HEAD: its response has no body."""
        return self._head_only

    @property
    def responding(self) -> bool:
        """True once the response's head has been made (too late for a 500)."""
        return self._h11.our_state is not h11.SEND_RESPONSE

    def error(self, status: int = 500) -> bytes:
        """A whole error response for the request being answered, before its head was made."""
        body = f"{status} {phrase(status)}\n".encode()
        return self.respond(status, {"content-type": "text/plain; charset=utf-8"}, body)

    def next_request(self) -> bool:
        """After a response: True if the connection may carry another request (keep-alive), else close it."""
        if self._request is None:
            return True  # respond began the next cycle
        conn = self._h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            self._request = None
            return True
        return False

    def upgraded(self) -> bytes:
        """After a Ready whose upgrade was accepted: the bytes that came after the request, for the new protocol."""
        return self._h11.trailing_data[0]
