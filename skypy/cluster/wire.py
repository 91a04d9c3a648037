"""skynet's cluster packet protocol, sans I/O: bytes in, requests and responses out, and back.

A node pair shares one TCP stream of packets framed like the gate's
(``skypy.netpack``: a 2-byte big-endian length, then the body); all numbers
inside a body are little-endian. Request bodies (caller -> callee) start
with a type byte:

    0x00 addr:u32 session:u32 msg          call or push (session 0) by address
    0x80 len:u8 name session:u32 msg       the same by name (the name keeps its "@")
    0x01/0x41 addr session size:u32        multipart call/push by address
    0x81/0xc1 len name session size:u32    multipart call/push by name
    0x02/0x03 session data                 a part, more to come / the last
    0x04 tag                               trace tag for the next request

Response bodies (callee -> caller) are ``session:u32 type:u8`` then: 0 error
text, 1 ok msg, 2 multipart begin ``size:u32``, 3 part data, 4 last part data.
Parts of different sessions interleave on the wire, so assembly is per session.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Generic, NamedTuple, TypeVar

import attrs

from .. import netpack

__all__ = [
    "PART_SIZE",
    "ClusterProtocolError",
    "MessageTooLarge",
    "Request",
    "RequestDecoder",
    "Response",
    "ResponseDecoder",
    "encode_request",
    "encode_response",
    "encode_trace",
]

PART_SIZE = 0x8000
"""A payload this long or longer goes out in parts of this size (32 KiB)."""

_MAX_U32 = 0xFFFF_FFFF

_REQUEST_BY_ADDR = 0x00
_REQUEST_BY_NAME = 0x80
_MULTIPART_FLAG = 0x01
_PUSH_FLAG = 0x40  # only in multipart headers: a single push is session 0
_BY_ADDR_TYPES = frozenset((0x00, 0x01, 0x41))  # single, multipart call, multipart push
_BY_NAME_TYPES = frozenset((0x80, 0x81, 0xC1))
_PART_MORE = 0x02
_PART_LAST = 0x03
_TRACE = 0x04

_RESPONSE_ERROR = 0
_RESPONSE_OK = 1
_RESPONSE_BEGIN = 2
_RESPONSE_PART = 3
_RESPONSE_LAST = 4

_U32 = struct.Struct("<I")
_U32X2 = struct.Struct("<II")
_SESSION_TYPE = struct.Struct("<IB")


class ClusterProtocolError(ValueError):
    """A packet breaks skynet's cluster protocol; the connection should be closed."""


class MessageTooLarge(ClusterProtocolError):
    """A multipart message, or the unfinished ones together, pass the decoder's `max_size`."""


@attrs.frozen
class Request:
    """One whole request from the peer: a call, or a push when ``session`` is 0."""

    target: int | str
    session: int
    msg: bytes
    trace: str | None = None

    @property
    def push(self) -> bool:
        """Whether no response is expected."""
        return self.session == 0


@attrs.frozen
class Response:
    """One whole response from the peer; ``msg`` is the error text when not ``ok``."""

    session: int
    ok: bool
    msg: bytes


def _check_u32(what: str, value: int) -> None:
    if not 0 <= value <= _MAX_U32:
        raise ClusterProtocolError(f"{what} {value} does not fit in 32 bits")


class _Part(NamedTuple):
    """One piece of a multipart payload, and whether it is the last."""

    data: memoryview
    last: bool


def _parts(msg: bytes) -> Iterator[_Part]:
    """Cut a multipart payload into PART_SIZE pieces, flagging the last one."""
    view = memoryview(msg)
    for start in range(0, len(msg), PART_SIZE):
        yield _Part(view[start : start + PART_SIZE], start + PART_SIZE >= len(msg))


def encode_request(
    target: int | str, session: int, msg: bytes, *, push: bool = False
) -> list[bytes]:
    """Frame a call (or push) to an address or a name as the packets to write, in order.

    A single-packet push carries session 0; a multipart push still needs a
    non-zero ``session`` to tag its parts, as skynet allocates one.
    """
    _check_u32("session", session)
    multipart = len(msg) >= PART_SIZE
    if push and not multipart:
        session = 0
    elif session == 0:
        what = "multipart push" if push else "call"
        raise ClusterProtocolError(f"a {what} needs a non-zero session")
    if isinstance(target, str):
        name = target.encode()
        if not 0 < len(name) <= 0xFF:
            raise ClusterProtocolError(f"service name {target!r} must be 1..255 bytes")
        kind, where = _REQUEST_BY_NAME, bytes((len(name),)) + name
    else:
        _check_u32("address", target)
        kind, where = _REQUEST_BY_ADDR, _U32.pack(target)
    if not multipart:
        return [netpack.pack(bytes((kind,)) + where + _U32.pack(session) + msg)]
    _check_u32("message size", len(msg))
    kind |= _MULTIPART_FLAG | (_PUSH_FLAG if push else 0)
    packets = [netpack.pack(bytes((kind,)) + where + _U32X2.pack(session, len(msg)))]
    for part, last in _parts(msg):
        tag = bytes((_PART_LAST if last else _PART_MORE,)) + _U32.pack(session)
        packets.append(netpack.pack(tag + part))
    return packets


def encode_response(session: int, ok: bool, msg: bytes) -> list[bytes]:
    """Frame the answer to ``session`` as the packets to write, in order.

    Error text has no multipart form, so it is cut to ``PART_SIZE`` bytes.
    """
    _check_u32("session", session)
    if not ok:
        return [netpack.pack(_SESSION_TYPE.pack(session, _RESPONSE_ERROR) + msg[:PART_SIZE])]
    if len(msg) < PART_SIZE:
        return [netpack.pack(_SESSION_TYPE.pack(session, _RESPONSE_OK) + msg)]
    _check_u32("message size", len(msg))
    packets = [netpack.pack(_SESSION_TYPE.pack(session, _RESPONSE_BEGIN) + _U32.pack(len(msg)))]
    for part, last in _parts(msg):
        kind = _RESPONSE_LAST if last else _RESPONSE_PART
        packets.append(netpack.pack(_SESSION_TYPE.pack(session, kind) + part))
    return packets


def encode_trace(tag: str) -> bytes:
    """Frame a trace tag; the peer applies it to the next request that starts."""
    return netpack.pack(bytes((_TRACE,)) + tag.encode())


_Event = TypeVar("_Event", Request, Response)


@attrs.define
class _Pending(Generic[_Event]):
    size: int
    event: _Event  # what the header said, with an empty msg until the last part
    parts: list[bytes] = attrs.Factory(list)
    received: int = 0


class _Assembler(Generic[_Event]):
    """Collects multipart messages per session; shared by both directions.

    With `max_size`, a message announcing more bytes, or parts of unfinished
    messages adding up to more, break the protocol: a peer cannot make us
    hold more than that for it.
    """

    def __init__(self, side: str, max_size: int | None = None) -> None:
        self._side = side
        self._pending: dict[int, _Pending[_Event]] = {}
        self._max_size = max_size
        self._buffered = 0  # bytes of parts held, over every session

    def begin(self, session: int, size: int, event: _Event) -> None:
        if session in self._pending:
            raise ClusterProtocolError(f"multipart {self._side} for session {session} began twice")
        if self._max_size is not None and size > self._max_size:
            raise MessageTooLarge(
                f"multipart {self._side} of session {session} announces {size} bytes,"
                f" over the limit of {self._max_size}"
            )
        self._pending[session] = _Pending(size, event)

    def add(self, session: int, data: bytes, last: bool) -> _Event | None:
        pending = self._pending.get(session)
        if pending is None:
            raise ClusterProtocolError(
                f"{self._side} part for session {session}, which has no multipart header"
            )
        pending.parts.append(data)
        pending.received += len(data)
        self._buffered += len(data)
        if pending.received > pending.size:
            raise ClusterProtocolError(
                f"{self._side} parts of session {session} exceed the announced {pending.size} bytes"
            )
        if self._max_size is not None and self._buffered > self._max_size:
            raise MessageTooLarge(
                f"unfinished multipart {self._side}s hold {self._buffered} bytes,"
                f" over the limit of {self._max_size}"
            )
        if not last:
            return None
        del self._pending[session]
        self._buffered -= pending.received
        if pending.received != pending.size:
            raise ClusterProtocolError(
                f"{self._side} of session {session} ended at {pending.received}"
                f" of the announced {pending.size} bytes"
            )
        return attrs.evolve(pending.event, msg=b"".join(pending.parts))


def _require(body: bytes, size: int, what: str, *, exact: bool = False) -> None:
    if len(body) < size or (exact and len(body) != size):
        need = "exactly" if exact else "at least"
        raise ClusterProtocolError(f"{what} packet of {len(body)} bytes, needs {need} {size}")


class RequestDecoder:
    """Turns request packet bodies (callee side) into whole ``Request`` events.

    `max_size` bounds a multipart request, and the parts held for unfinished
    ones together (ClusterProtocolError past it); None: no bound.
    """

    def __init__(self, max_size: int | None = None) -> None:
        self._assembler: _Assembler[Request] = _Assembler("request", max_size)
        self._trace: str | None = None

    def feed(self, body: bytes) -> Request | None:
        """Take one packet body; return the request it completes, if any."""
        if not body:
            raise ClusterProtocolError("empty request packet")
        kind = body[0]
        if kind in (_PART_MORE, _PART_LAST):
            _require(body, 5, "request part")
            return self._assembler.add(_U32.unpack_from(body, 1)[0], body[5:], kind == _PART_LAST)
        if kind == _TRACE:
            # Trace text is only ever logged, so undecodable bytes are not worth a disconnect.
            self._trace = body[1:].decode(errors="replace")
            return None
        target, pos = self._target(body, kind)
        trace, self._trace = self._trace, None
        if not kind & _MULTIPART_FLAG:
            _require(body, pos + 4, "request")
            return Request(target, _U32.unpack_from(body, pos)[0], body[pos + 4 :], trace)
        _require(body, pos + 8, "multipart request header", exact=True)
        session, size = _U32X2.unpack_from(body, pos)
        push = bool(kind & _PUSH_FLAG)
        if session == 0 and not push:
            raise ClusterProtocolError("multipart call with session 0 could never be answered")
        # A push is reported with session 0 whatever tag its parts carried.
        self._assembler.begin(session, size, Request(target, 0 if push else session, b"", trace))
        return None

    @staticmethod
    def _target(body: bytes, kind: int) -> tuple[int | str, int]:
        """Read the address or name after the type byte; return it and where the session starts."""
        if kind in _BY_ADDR_TYPES:
            _require(body, 5, "request")
            return _U32.unpack_from(body, 1)[0], 5
        if kind in _BY_NAME_TYPES:
            _require(body, 2, "request by name")
            end = 2 + body[1]
            _require(body, end, "request by name")
            try:
                return body[2:end].decode(), end
            except UnicodeDecodeError:
                raise ClusterProtocolError(f"service name {body[2:end]!r} is not UTF-8") from None
        raise ClusterProtocolError(f"unknown request packet type {kind:#04x}")


class ResponseDecoder:
    """Turns response packet bodies (caller side) into whole ``Response`` events."""

    def __init__(self) -> None:
        self._assembler: _Assembler[Response] = _Assembler("response")

    def feed(self, body: bytes) -> Response | None:
        """Take one packet body; return the response it completes, if any."""
        _require(body, 5, "response")
        session, kind = _SESSION_TYPE.unpack_from(body)
        if kind == _RESPONSE_OK:
            return Response(session, True, body[5:])
        if kind == _RESPONSE_ERROR:
            return Response(session, False, body[5:])
        if kind == _RESPONSE_BEGIN:
            _require(body, 9, "multipart response header", exact=True)
            size = _U32.unpack_from(body, 5)[0]
            self._assembler.begin(session, size, Response(session, True, b""))
            return None
        if kind in (_RESPONSE_PART, _RESPONSE_LAST):
            return self._assembler.add(session, body[5:], kind == _RESPONSE_LAST)
        raise ClusterProtocolError(f"unknown response type {kind} for session {session}")
