"""The socket-server actor: one per node, it owns every socket and does all socket I/O.

Services make requests by plain calls, carried out at once (as a command on
skynet's socket pipe would be, with no thread between), and hear back through
PTYPE_SOCKET messages posted to their mailbox, in order with every other
message. The rules live in table.py and the per-socket tasks in
loops.py; this module takes the requests and carries out the rules.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Final

import trio
from trio.lowlevel import notify_closing

from .._core.message import PTYPE_RESPONSE, PTYPE_SOCKET
from ..errors import SocketError
from . import loops
from .forwarding import Forwarding
from .poller import AVAILABLE as POLLING, Poller
from .table import BEHIND, WARNING, WRITABLE, Conn, Effect, Event, SocketTable, State

if TYPE_CHECKING:
    from .._core.node import Node

# Looked up once: reading an enum member off its class costs 50 ns in CPython 3.11.
CONNECTING: Final = State.CONNECTING
# What a close reads and drops, at most, before closing the fd (see _close_fd).
DISCARD_MAX = 1 << 20


class SocketServer:
    """Owns every socket of one node; services reach it through skypy.socket."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.table = SocketTable()
        self._spawn(self._keeper)
        # Connected TCP sockets are read by one task (poller.py), where the OS has epoll.
        self.poller = Poller(self) if POLLING else None
        if self.poller is not None:
            self._spawn(self.poller.run)

    @classmethod
    def of(cls, node: Node) -> SocketServer:
        """The node's socket server, started on first use."""
        server: SocketServer | None = node.extensions.get("socket")  # every write asks: skip a call
        return node.extension("socket", cls, node) if server is None else server

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self.node.nursery is not None, "the node is not running"
        self.node.nursery.start_soon(fn, *args)

    async def _keeper(self) -> None:
        """Lives as long as the node; when it stops, every fd still open is closed."""
        try:
            await trio.sleep_forever()
        finally:
            for conn in self.table:
                self._close_fd(conn)

    # --- requests from services -------------------------------------------

    def listen(self, owner: int, host: str | None, port: int, backlog: int | None) -> int:
        """Bind and listen in the background; the owner hears CONNECT (id, address) or ERROR."""
        conn = self.table.new("listen", State.OPENING, owner)
        self._spawn(loops.bind, self, conn, host, port, backlog)
        return conn.id

    def udp(self, owner: int, host: str | None, port: int) -> int:
        """Bind a UDP socket in the background; CONNECT or ERROR follows, then UDP events."""
        conn = self.table.new("udp", State.OPENING, owner)
        self._spawn(loops.bind, self, conn, host, port, None)
        return conn.id

    def open(self, owner: int, host: str, port: int) -> int:
        """Connect in the background; the owner hears CONNECT (id, peer) or ERROR."""
        conn = self.table.new("tcp", State.CONNECTING, owner)
        self._spawn(loops.connect, self, conn, host, port)
        return conn.id

    def start(self, id: int, owner: int) -> None:
        """Make `owner` the socket's owner and start reading (accepting); SocketError if dead."""
        conn = self.table.get(id)
        if conn is None:
            raise SocketError(f"socket {id} is unknown: closed, or never opened")
        try:
            effects = conn.start(owner)
        except SocketError:
            if conn.state is State.CLOSED:
                self.table.release(id)  # it died in transit; nobody else can close it
            raise
        self.apply(conn, effects)

    def pause(self, id: int) -> None:
        """Stop reading connection `id` until `resume`, so its peer is held back by TCP."""
        conn = self.table.get(id)
        if conn is not None:
            self.apply(conn, conn.pause())

    def resume(self, id: int) -> None:
        """Read connection `id` again after `pause`; a forwarded one first sends on what it holds."""
        conn = self.table.get(id)
        if conn is None:
            return
        forwarding = conn.forwarding
        if forwarding is not None and forwarding.held and conn.state is State.CONNECTED:
            try:
                if not forwarding.deliver(self.node, b""):
                    self.hold_back(conn, forwarding)  # still behind: stay paused
                    return
            except Exception as exc:
                self.forwarding_failed(conn, exc)
                return
        self.apply(conn, conn.resume())

    def forward(
        self, id: int, dest: int, source: int, ptype: int, pack: Callable[..., Any] | None,
        head: tuple[Any, ...], maxqueue: int,
    ) -> None:
        """Cut what TCP connection `id` reads into netpack packets and post each to `dest`
        (forwarding.py), from now until it closes or is abandoned; SocketError if there is
        no such connection. Called again, it sends the packets elsewhere, losing none."""
        conn = self.table.get(id)
        if conn is None or conn.kind != "tcp":
            raise SocketError(f"socket {id} is not a TCP connection: it cannot be forwarded")
        if conn.forwarding is None:
            conn.forwarding = Forwarding()
            # Forwarded before, then abandoned: what the last forwarding read
            # and did not send on comes first.
            conn.forwarding.held, conn.unread = conn.unread, b""
        conn.forwarding.redirect(dest, source, ptype, pack, head, maxqueue)

    def hold_back(self, conn: Conn, forwarding: Forwarding) -> None:
        """The consumer of forwarded `conn` is behind: pause reading, and tell the owner,
        whose skypy.socket resumes it once the consumer has caught up."""
        self.apply(conn, conn.pause())
        self.post_event(conn.owner, (BEHIND, conn.id, forwarding.dest))

    def forwarding_failed(self, conn: Conn, exc: Exception) -> None:
        """A packet of forwarded `conn` could not be sent on (its packer raised): that
        connection fails, with a log line, and the node reads on."""
        self.node.log(
            conn.owner, f"socket {conn.id}: a forwarded packet failed to pack, connection closed: {exc!r}", logging.WARNING
        )
        self.apply(conn, conn.failed(f"forward: {exc}"))

    def abandon(self, id: int) -> None:
        """The owner lets the socket go, unread, for another service to start."""
        conn = self.table.get(id)
        if conn is not None:
            self.apply(conn, conn.abandon())

    def write(self, id: int, data: bytes, high: bool = True) -> bool:
        """Send or queue `data`, never blocking; False if the socket takes no writes."""
        conn = self.table.conns.get(id)
        if conn is None or conn.state not in WRITABLE:  # conn.writable, inlined: every write asks
            return False
        if conn.kind == "udp":
            return self._send_datagram(conn, data, None)
        queue = conn.queue
        if not queue.size and conn.state is not CONNECTING:
            # Nothing queued: hand the bytes to the kernel from the calling
            # service, as skynet does; the writer task is only for the rest.
            assert conn.sock is not None  # set in every writable state but CONNECTING
            try:
                sent = conn.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self.apply(conn, conn.failed(f"write: {exc.strerror or exc}"))
                return False
            conn.bytes_written += sent
            if sent == len(data):
                return True
            data = data[sent:]
        queued = queue.push(data, high=high)
        if queued is not None:
            self.post_event(conn.owner, (WARNING, id, queued))
        if not conn.writing and conn.state is not CONNECTING:
            self._flush(conn)
        return True

    def sendto(self, id: int, address: tuple[str, int], data: bytes) -> bool:
        """Send one datagram from UDP socket `id`; False if the kernel cannot take it now."""
        conn = self.table.conns.get(id)
        if conn is None or conn.kind != "udp" or conn.state is not State.CONNECTED:
            return False
        return self._send_datagram(conn, data, address)

    def udp_connect(self, id: int, host: str, port: int) -> None:
        """Give UDP socket `id` a default peer, for `write`."""
        conn = self.table.get(id)
        if conn is None or conn.kind != "udp" or conn.sock is None:
            raise SocketError(f"socket {id} is not an open UDP socket")
        try:
            # Resolved on the spot, as skynet does: a numeric address costs
            # nothing, and a name is looked up in the hosts file first.
            conn.sock.connect((host, port))
        except OSError as exc:
            raise SocketError(f"UDP connect of socket {id} to {host}:{port} failed: {exc}") from None
        conn.peer = (host, port)

    def close(self, id: int, closer: tuple[int, int] | None, timeout: float | None = None) -> None:
        """Close after flushing; `closer` (handle, session) gets a RESPONSE when the fd is closed.

        With `timeout`, a flush still running after that many seconds becomes a shutdown.
        """
        conn = self.table.get(id)
        if conn is None:
            if closer is not None:
                self._answer(closer)  # nothing left to close
            return
        effects = conn.close(closer)
        if timeout is not None and conn.state is State.HALFCLOSE and conn.timer is None:
            conn.timer = trio.CancelScope(deadline=trio.current_time() + timeout)
            self._spawn(loops.close_timer, self, conn, conn.timer)
        self.apply(conn, effects)

    def shutdown(self, id: int) -> None:
        """Close at once, dropping unsent bytes; the id must still be closed."""
        conn = self.table.get(id)
        if conn is not None:
            self.apply(conn, conn.shutdown())

    def close_owned(self, owner: int) -> None:
        """Close every socket `owner` holds, silently: the owner is gone."""
        for conn in self.table:
            if conn.owner == owner:
                conn.owner = 0
                self.apply(conn, conn.close(None))

    def info(self) -> list[dict[str, Any]]:
        """Every socket's counters, by id."""
        return [conn.info() for conn in self.table]

    # --- carrying out what the rules decide ---------------------------------

    def apply(self, conn: Conn, effects: list[Effect | Event]) -> None:
        """Carry out what a transition of `conn` decided, in order."""
        for effect in effects:
            if type(effect) is tuple:
                self.post_event(conn.owner, effect)
            elif effect is Effect.CLOSE_FD:
                self._close_fd(conn)
            elif effect is Effect.NOTIFY:
                for closer in conn.closers:
                    self._answer(closer)
                conn.closers.clear()
            elif effect is Effect.RELEASE:
                self.table.release(conn.id)
            elif effect is Effect.FLUSH:
                self._flush(conn)
            elif effect is Effect.READ:
                self._start_reading(conn)
            elif effect is Effect.STOP_READ:
                if conn.reader is not None:
                    conn.reader.cancel()
                    conn.reader = None

    def post_event(self, owner: int, event: Event) -> None:
        if owner:
            self.node.post(owner, (0, 0, PTYPE_SOCKET, event))

    def _answer(self, closer: tuple[int, int]) -> None:
        handle, session = closer
        self.node.post(handle, (0, session, PTYPE_RESPONSE, ()))

    def _close_fd(self, conn: Conn) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        sock = conn.sock
        if sock is None:
            return
        conn.sock = None
        if conn.reader is not None:
            conn.reader.cancel()
            conn.reader = None
        if conn.kind == "tcp":
            # Closing with unread input makes the kernel send RST instead of
            # FIN, and a peer that gets RST may drop what it has not read yet:
            # read what is pending first (best effort, bounded).
            discarded = 0
            try:
                while discarded < DISCARD_MAX:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    discarded += len(chunk)
            except OSError:
                pass
        # Wakes our tasks parked on this fd (with ClosedResourceError) so
        # none of them waits on an fd number the OS may hand out again.
        notify_closing(sock)
        sock.close()

    def _flush(self, conn: Conn) -> None:
        if not conn.writing and conn.sock is not None:
            conn.writing = True
            self._spawn(loops.write_loop, self, conn, conn.sock)

    def _start_reading(self, conn: Conn) -> None:
        if conn.kind == "tcp" and self.poller is not None:
            self.poller.read(conn)
            return
        scope = conn.reader = trio.CancelScope()
        loop = {"tcp": loops.read_loop, "listen": loops.accept_loop, "udp": loops.udp_loop}
        self._spawn(loop[conn.kind], self, conn, conn.sock, scope)

    def _send_datagram(self, conn: Conn, data: bytes, address: tuple[str, int] | None) -> bool:
        # A datagram the kernel cannot take now is dropped rather than
        # queued: UDP promises no delivery, and a full socket buffer is the
        # same loss one hop earlier.
        sock = conn.sock
        assert sock is not None  # a bound UDP socket's fd is set until it closes
        try:
            if address is None:
                sock.send(data)
            else:
                sock.sendto(data, address)
        except OSError:
            return False
        conn.bytes_written += len(data)
        return True
