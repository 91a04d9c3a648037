"""The sockets one service holds, as that service sees them: skynet's socket.lua state.

A service's first socket call installs a SocketPool as its "socket"
dispatch handler. The handler buffers DATA per id and wakes the coroutine
blocked on a socket; skypy/socket.py is the API on top. A coroutine here
suspends only through the service's own primitives, so the turn order holds.
"""

from __future__ import annotations

import enum
from typing import Any, Callable

from .._api.coroutines import timeout
from .._api.lifecycle import on_exit
from .._api.messages import call, dispatch, running
from .._core.current import current
from .._core.service import Service
from ..errors import CallError, SocketClosed, SocketError
from .recvbuffer import RecvBuffer
from .server import SocketServer
from .table import ACCEPT, BEHIND, CLOSE, CONNECT, DATA, ERROR, UDP, WARNING

# Unread bytes a service may hold for one connection before the server stops
# reading it (TCP backpressure), unless a read waits for more; reading
# resumes once they are read. readall() alone waits with no bound: it was
# asked for everything.
BUFFER_MAX = 1 << 20
# The longest line `readline` waits for by default; a longer one is LineTooLong.
MAX_LINE = 1 << 20


class LineTooLong(SocketError):
    """`readline` found more bytes than its `max` with no separator; the connection is closed."""


class Until(enum.Enum):
    """What a blocked coroutine waits for when it is not bytes: the socket to open, or to close (readall)."""

    OPEN = "open"
    CLOSED = "closed"


# What the one coroutine blocked on a socket waits for: a byte count (0: any
# bytes), a line separator, or an event.
Want = int | bytes | Until


class Sock:
    """One socket this service holds: its unread bytes, its waiter and callbacks."""

    __slots__ = (
        "id", "buffer", "connected", "connecting", "closing", "want", "result", "address",
        "error", "on_accept", "on_udp", "on_warning",
        "line_max", "too_long", "paused",
    )

    def __init__(self, id: int, connected: bool) -> None:
        self.id = id
        self.buffer = RecvBuffer()
        self.connected = connected  # False once CLOSE (or ERROR) has come
        self.connecting = not connected  # waiting for CONNECT or ERROR
        self.closing = False  # a coroutine of ours is in close()
        # What the one blocked coroutine wants (None: nobody waits), and what
        # the handler took for it from the buffer when it woke it.
        self.want: Want | None = None
        self.result: bytes | None = None
        self.address: tuple[str, int] | None = None
        self.error: str | None = None
        self.on_accept: Callable[..., Any] | None = None
        self.on_udp: Callable[..., Any] | None = None
        self.on_warning: Callable[..., Any] | None = None
        self.line_max = MAX_LINE  # the waiting readline's maximum
        self.too_long = False  # a line passed its maximum: the connection is being closed
        self.paused = False  # this pool paused the connection: its buffer is full


def take(buffer: RecvBuffer, want: Want) -> bytes | None:
    """What `want` asks for, taken from `buffer`, or None (taking nothing) if not there yet."""
    if type(want) is bytes:
        return buffer.take_line(want)
    if want == 0:
        return buffer.take_all() if buffer.size else None
    if type(want) is int:
        return buffer.take(want)
    return None  # Until.OPEN and Until.CLOSED wait for events, not bytes


class SocketPool:
    """The sockets of one service, and its PTYPE_SOCKET handler."""

    def __init__(self, svc: Service, server: SocketServer) -> None:
        self.svc = svc
        self.server = server
        self.socks: dict[int, Sock] = {}
        # Kept apart from socks, as skynet does, so a callback still runs
        # when CLOSE comes for an id this service has let go of.
        self.onclose: dict[int, Callable[[int], Any]] = {}

    @classmethod
    def mine(cls) -> SocketPool:
        """The running service's pool, made on first use with its "socket" handler and exit hook.

        Installed through the service API, as any library would: `dispatch`
        for PTYPE_SOCKET messages, `on_exit` to close what it holds.
        """
        try:
            svc = current.get()  # running(), inlined: every read comes this way
        except LookupError:
            svc = running()  # raises the error that says where to call this from
        pool: SocketPool | None = svc.libraries.get("socket")
        if pool is None:
            pool = svc.libraries["socket"] = cls(svc, SocketServer.of(svc.node))
            dispatch("socket", pool.dispatch)
            on_exit(pool.exited)
        return pool

    def exited(self) -> None:
        """The service is gone: its sockets close (after flushing) and nobody hears of it."""
        self.svc.libraries.pop("socket", None)
        self.server.close_owned(self.svc.handle)

    def add(self, id: int, connected: bool) -> Sock:
        s = self.socks[id] = Sock(id, connected)
        return s

    def forget(self, id: int) -> None:
        """Drop `id` and its buffer; a coroutine still blocked on it wakes and finds it closed."""
        s = self.socks.pop(id, None)
        if s is not None and s.want is not None:
            s.want = None
            self.svc.wakeup(s)

    def interrupt(self, id: int) -> None:
        """End the read waiting on `id`, if one does, with no bytes (b""); the socket stays as it is.

        For a library that times its reads itself (skypy.http's sweeper)
        rather than with a trio cancel scope around each, which would give
        the reading coroutine a trio task of its own.
        """
        s = self.socks.get(id)
        if s is not None and s.want is not None:
            s.want = None
            s.result = b""
            self.svc.wakeup(s)

    # --- blocking on a socket -------------------------------------------------

    async def wait(self, s: Sock, want: Want) -> bytes | None:
        """Suspend until the handler wakes us: the bytes wanted, or None when the socket closed.

        `want` becomes what the one coroutine reading `s` waits for;
        SocketError if another reads it already.
        """
        if s.want is not None:
            raise SocketError(f"socket {s.id} is already being read by another coroutine")
        s.want = want
        s.result = None
        try:
            await self.svc.suspend_until_woken(s)
        finally:
            s.want = None
        result, s.result = s.result, None
        return result

    async def read(self, id: int, want: int | bytes, line_max: int = MAX_LINE) -> bytes:
        """`want` bytes (0: any), or a line ending in separator `want` of at most `line_max`
        bytes; SocketClosed if it closes first, LineTooLong if the line is longer."""
        s = self.socks.get(id)
        if s is None:
            raise SocketClosed(f"socket {id} is not open in this service")
        # take(), inlined for the usual read: anything, of a socket drained so far.
        result = None if want == 0 and not s.buffer.size else take(s.buffer, want)
        if result is not None and not (type(want) is bytes and len(result) > line_max):
            if s.paused:
                self._drained(s)
            return result
        if s.paused:
            self._resume(s)  # the reader wants more than is buffered
        s.line_max = line_max
        if result is not None or type(want) is bytes and len(s.buffer) > line_max:
            self._too_long(s)
        # A read started after, or during, a close ends at once.
        if s.connected and not s.closing and not s.too_long:
            result = await self.wait(s, want)
            if result is not None:
                return result
        if s.too_long:
            raise LineTooLong(
                f"socket {id}: over {s.line_max} bytes with no {want!r}; the connection is closed"
                " (raise readline's max for longer lines)"
            )
        raise SocketClosed(f"socket {id} closed before the read was satisfied", s.buffer.take_all())

    def _too_long(self, s: Sock) -> None:
        """A line passed its maximum: drop what is buffered, stop reading, and close the
        connection once the reader next suspends, so that a reply it writes first goes out."""
        s.too_long = True
        s.buffer.take_all()
        self.server.pause(s.id)
        id = s.id
        timeout(0, lambda: self.server.close(id, None))

    def _drained(self, s: Sock) -> None:
        """A read took from a paused socket's buffer: resume once it is half empty."""
        if len(s.buffer) <= BUFFER_MAX // 2:
            self._resume(s)

    def _resume(self, s: Sock) -> None:
        s.paused = False
        if not s.too_long:
            self.server.resume(s.id)

    async def readall(self, id: int) -> bytes:
        """Every byte until the socket closes."""
        s = self.socks.get(id)
        if s is None:
            raise SocketClosed(f"socket {id} is not open in this service")
        if s.paused:
            self._resume(s)
        if s.connected and not s.closing:
            await self.wait(s, Until.CLOSED)
        return s.buffer.take_all()

    async def opened(self, id: int) -> tuple[str, int]:
        """Wait for CONNECT of a socket being opened: its address, or SocketError with the reason."""
        s = self.socks.get(id) or self.add(id, False)
        try:
            await self.wait(s, Until.OPEN)
        except BaseException:
            self.forget(id)
            self.server.close(id, None)
            raise
        if s.error is not None:
            self.forget(id)
            self.server.close(id, None)
            raise SocketError(s.error)
        if s.address is None:  # dropped (closed, abandoned) before it opened
            raise SocketError(f"socket {id} was closed before it opened")
        return s.address

    async def close(self, id: int, timeout: float | None) -> None:
        """Flush and close `id`; return once the fd is closed (docs/architecture.md, "The close protocol")."""
        s = self.socks.get(id)
        if s is None:
            return  # closed already, or never ours: a no-op, as in skynet
        s.closing = True
        svc = self.svc
        session = svc.new_session()
        # The server answers this session once the fd is closed, right
        # behind the CLOSE it posts (if it still owes one), so a coroutine
        # blocked in read is woken by CLOSE and runs before we resume:
        # skynet's "the reader's wake-up wakes the closer", kept by the
        # mailbox order instead of a chain of wakeups.
        self.server.close(id, (svc.handle, session), timeout)
        try:
            await svc.wait_session(session)
        finally:
            self.forget(id)

    # --- the PTYPE_SOCKET handler ----------------------------------------------

    def dispatch(self, session: int, source: int, kind: int, id: int, *args: Any) -> Any:
        """Handle one socket event; a callback's coroutine is returned to run as one."""
        if kind == DATA:
            s = self.socks.get(id)
            if s is None:
                self.svc.node.log(self.svc.handle, f"socket: drop package from {id}")
            elif self.feed(s, args[0]):
                self.svc.wakeup(s)
            return None
        handler = _EVENTS.get(kind)
        if handler is None:
            self.svc.node.log(self.svc.handle, f"socket: unknown event {kind} for {id}")
            return None
        return handler(self, id, *args)

    def feed(self, s: Sock, data: bytes) -> bool:
        """Take `data` in for `s`; True if its reader now has what it wants (in `s.result`)."""
        buffer = s.buffer
        want = s.want
        if want == 0 and not buffer.size:
            # The usual case (a reader waiting for anything): hand the
            # bytes over without passing them through the buffer.
            s.want = None
            s.result = data
            return True
        if buffer.push(data):
            self._overflow(s)
            return False
        if want is not None:
            result = take(buffer, want)
            if result is not None and type(want) is bytes and len(result) > s.line_max:
                s.want = None
                self._too_long(s)
                return True  # the reader wakes with no result and raises LineTooLong
            if result is not None:
                s.want = None  # so later DATA cannot take for it again
                s.result = result
                if s.paused:
                    self._drained(s)
                return True
            if type(want) is bytes and len(buffer) > s.line_max:
                s.want = None
                self._too_long(s)
                return True  # the reader wakes with no result and raises LineTooLong
        if not s.paused and want is not Until.CLOSED:
            bound = want if type(want) is int and want > BUFFER_MAX else BUFFER_MAX
            if type(want) is bytes and s.line_max > bound:
                bound = s.line_max
            if len(buffer) > bound:
                s.paused = True
                self.server.pause(s.id)
        return False

    def _overflow(self, s: Sock) -> None:
        self.svc.node.log(self.svc.handle, f"socket buffer overflow: fd={s.id} size={len(s.buffer)}")
        self.server.close(s.id, None)

    def _wake(self, s: Sock) -> None:
        if s.want is not None:
            s.want = None
            self.svc.wakeup(s)

    def _on_connect(self, id: int, address: tuple[str, int]) -> None:
        s = self.socks.get(id)
        if s is None:
            return
        s.connected = True
        if s.connecting:
            s.connecting = False
            s.address = address
            self._wake(s)

    def _on_close(self, id: int) -> Any:
        s = self.socks.get(id)
        if s is None:
            self.server.close(id, None)  # not ours: release it, as skynet does
        else:
            s.connected = False
            self._wake(s)  # the reader first: its SocketClosed carries the buffer
        callback = self.onclose.pop(id, None)
        return None if callback is None else callback(id)

    def _on_accept(self, id: int, new_id: int, address: Any) -> Any:
        s = self.socks.get(id)
        if s is None or s.on_accept is None:
            self.server.close(new_id, None)
            return None
        return s.on_accept(new_id, address)

    def _on_error(self, id: int, reason: str) -> None:
        log = self.svc.node.log
        s = self.socks.get(id)
        if s is None:
            self.server.shutdown(id)
            log(self.svc.handle, f"socket: error on unknown {id}: {reason}")
            return
        if s.on_accept is not None:
            log(self.svc.handle, f"socket: accept error: {reason}")
            return
        if s.connecting:
            s.connecting = False
            s.error = reason
        elif s.connected:
            log(self.svc.handle, f"socket: error on {id}: {reason}")
        s.connected = False
        self.server.shutdown(id)
        self._wake(s)

    def _on_udp(self, id: int, data: bytes, address: Any) -> Any:
        s = self.socks.get(id)
        if s is None or s.on_udp is None:
            self.svc.node.log(self.svc.handle, f"socket: drop udp package from {id}")
            return None
        return s.on_udp(data, address)

    def _on_behind(self, id: int, consumer: int) -> Any:
        return self._resume_when_taken(id, consumer)

    async def _resume_when_taken(self, id: int, consumer: int) -> None:
        """Read forwarded `id` on once `consumer` has taken every message queued before now.

        A debug PING, which every service answers, queues behind them: its
        answer is the sign. No polling, and nothing on the core's message path.
        """
        try:
            await call(consumer, "debug", "PING")
        except CallError:
            pass  # the consumer is gone: read on, and let the owner decide
        self.server.resume(id)

    def _on_warning(self, id: int, queued: int) -> Any:
        s = self.socks.get(id)
        if s is not None and s.on_warning is not None:
            return s.on_warning(id, queued)
        self.svc.node.log(
            self.svc.handle, f"WARNING: {queued // 1024} K bytes need to send out (fd = {id})"
        )
        return None


_EVENTS: dict[int, Callable[..., Any]] = {
    CONNECT: SocketPool._on_connect,
    CLOSE: SocketPool._on_close,
    ACCEPT: SocketPool._on_accept,
    ERROR: SocketPool._on_error,
    UDP: SocketPool._on_udp,
    WARNING: SocketPool._on_warning,
    BEHIND: SocketPool._on_behind,
}
