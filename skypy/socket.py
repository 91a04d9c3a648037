"""skypy.socket: sockets for service code, as skynet's socket.lua gives them.

    from skypy import socket

    async def main():
        async def serve(id, addr):
            await socket.start(id)
            while True:
                line = await socket.readline(id)
                socket.write(id, line + b"\\n")

        listen_id, host, port = await socket.listen("127.0.0.1", 8888)
        await socket.start(listen_id, lambda id, addr: skypy.fork(serve, id, addr))

Every function acts for the running service. Ids are the socket server's,
never OS fds. Only the service that started a socket reads it; any service
may write to any id. The owner hears CLOSE once per socket, whoever closed
it; `close` returns once what was written has gone out and the fd is
closed, after a coroutine blocked reading the socket has been woken ("The
close protocol" in docs/architecture.md).
"""

from __future__ import annotations

from typing import Any, Callable, Coroutine

from ._api.messages import running
from ._core.current import current
from ._net.forwarding import MAXQUEUE
from ._net.pool import BUFFER_MAX, MAX_LINE, LineTooLong, SocketPool
from ._net.server import SocketServer
from ._net.table import ACCEPT, BEHIND, CLOSE, CONNECT, DATA, ERROR, UDP, WARNING
from .errors import SocketClosed, SocketError

# `open` (skynet's name) is left out, so `from skypy.socket import *` does
# not shadow the builtin: write `socket.open(host, port)`.
__all__ = [
    "ACCEPT", "BEHIND", "BUFFER_MAX", "CLOSE", "CONNECT", "DATA", "ERROR", "MAXQUEUE", "MAX_LINE", "UDP",
    "WARNING",
    "LineTooLong", "SocketClosed", "SocketError",
    "abandon", "close", "close_fd", "disconnected", "forward", "info", "invalid", "limit", "listen", "lwrite",
    "onclose", "pause", "read", "readall", "readline", "resume", "sendto", "shutdown", "start", "udp",
    "udp_connect", "warning", "write",
]

Address = tuple[str, int]


_pool = SocketPool.mine  # the running service's pool: one frame fewer on every read


def _server() -> SocketServer:
    return SocketServer.of(running().node)


def _owned(pool: SocketPool, id: int) -> Any:
    s = pool.socks.get(id)
    if s is None:
        raise SocketError(f"socket {id} is not open in service {running()!r}")
    return s


# --- opening ------------------------------------------------------------------


async def listen(host: str | None, port: int = 0, backlog: int | None = None) -> tuple[int, str, int]:
    """Listen on `host`:`port` (0: any free port); returns (id, host, real port).

    Connections are accepted once the id is `start`ed. SocketError if binding fails.
    """
    pool = _pool()
    id = pool.server.listen(pool.svc.handle, host, port, backlog)
    pool.add(id, False)
    host_, port_ = await pool.opened(id)
    return id, host_, port_


async def open(host: str, port: int) -> int:
    """Connect to `host`:`port` and start reading; the id, or SocketError naming both."""
    pool = _pool()
    id = pool.server.open(pool.svc.handle, host, port)
    pool.add(id, False)
    await pool.opened(id)
    return id


async def start(id: int, on_accept: Callable[[int, Address], Any] | None = None) -> None:
    """Take ownership of `id` and begin reading it; for a listening id, accept connections.

    ``on_accept(new_id, address)`` runs for each connection (as a coroutine of
    this service if it is async). SocketError if the socket died in transit.
    """
    pool = _pool()
    pool.server.start(id, pool.svc.handle)
    s = pool.socks.get(id) or pool.add(id, True)
    if on_accept is not None:
        s.on_accept = on_accept


def pause(id: int) -> None:
    """Stop reading connection `id`: what its peer sends waits in the kernel, whose
    full buffers then hold the peer back (TCP backpressure). `resume` reads again."""
    _server().pause(id)


def resume(id: int) -> None:
    """Read connection `id` again after `pause`."""
    _server().resume(id)


def forward(
    id: int, addr: int | str, source: int, typename: str | int, *args: Any, maxqueue: int = MAXQUEUE
) -> None:
    """Cut what connection `id` reads into netpack packets and send each on, as
    ``skypy.redirect(addr, source, typename, 0, *args, packet)`` would from this service.

    The socket server does it where it reads, as skynet's gate does for its
    agents: no step of this service per packet. `id`'s bytes no longer come
    here as DATA; its events (CLOSE, ERROR…) still do. Once more than
    `maxqueue` messages wait for `addr`, reading pauses until it has taken
    them, so TCP holds the peer back. Lasts until `id` closes or is abandoned
    (the next owner reads on from the first byte not sent on); called again,
    later packets go to the new place and none is lost. `addr` is resolved
    now; SocketError if `id` is not a TCP connection.
    """
    svc = running()
    ptype, pack = svc.protocols.senders[typename]
    _server().forward(id, svc.node.resolve(addr), source, ptype, pack, args, maxqueue)


def abandon(id: int) -> None:
    """Give up `id` unclosed, unread from now on, so that another service can `start` it."""
    pool = _pool()
    pool.forget(id)
    pool.onclose.pop(id, None)
    pool.server.abandon(id)


# --- reading ------------------------------------------------------------------


def read(id: int, n: int | None = None) -> Coroutine[Any, Any, bytes]:
    """Exactly `n` bytes, or with no `n` whatever has arrived (waiting for some): await it.

    SocketClosed, carrying the unread bytes in `.rest`, if the socket closes first.
    Bytes nobody reads are held up to BUFFER_MAX (1 MiB; more while a read of
    a larger `n` waits), then the connection is paused until they are read.

    A plain function returning the read's coroutine, rather than a coroutine
    function of its own: this is the hottest path of a socket service, and
    each frame on it is resumed on every read.
    """
    if n is None or n > 0:
        return _pool().read(id, n or 0)
    return _read_nothing(id, n)


async def _read_nothing(id: int, n: int) -> bytes:
    """`read` of `n` <= 0 bytes: none, or ValueError for a negative count."""
    if n < 0:
        raise ValueError(f"cannot read {n} bytes from socket {id}")
    return b""


async def readline(id: int, sep: bytes = b"\n", max: int = MAX_LINE) -> bytes:
    """The bytes up to `sep`, which is dropped; SocketClosed (with `.rest`) if it closes first.

    A line longer than `max` bytes (1 MiB by default) raises LineTooLong, and
    the connection is closed once the caller next suspends (a reply written
    before that still goes out).
    """
    if not sep:
        raise ValueError("readline needs a non-empty separator")
    return await _pool().read(id, sep, max)


async def readall(id: int) -> bytes:
    """Every byte until the socket closes."""
    return await _pool().readall(id)


# --- writing ------------------------------------------------------------------


def write(id: int, data: bytes) -> bool:
    """Send `data`, never blocking; False if `id` takes no more writes (closing or closed)."""
    try:
        svc = current.get()  # running(), inlined: every answer a server writes comes this way
    except LookupError:
        svc = running()  # raises the error that says where to call this from
    return SocketServer.of(svc.node).write(id, data, True)


def lwrite(id: int, data: bytes) -> bool:
    """As `write`, at low priority: sent after every queued `write`, never inside one."""
    return SocketServer.of(running().node).write(id, data, False)


# --- closing ------------------------------------------------------------------


async def close(id: int, timeout: float | None = None) -> None:
    """Close `id` once everything written to it has gone out, and release it.

    Returns when the fd is closed; a coroutine blocked reading `id` is woken
    (SocketClosed) first. After `timeout` seconds the unsent rest is dropped.
    Closing an id that is closed, or not this service's, does nothing.
    """
    await _pool().close(id, timeout)


def shutdown(id: int) -> None:
    """Close `id` at once, dropping unread and unsent bytes; CLOSE still follows,
    and `close` must still release the id."""
    pool = _pool()
    s = pool.socks.get(id)
    if s is not None:
        s.buffer.take_all()
    pool.server.shutdown(id)


def close_fd(id: int) -> None:
    """Close an id this service never started (an accepted connection it refuses)."""
    pool = _pool()
    if id in pool.socks:
        raise SocketError(f"socket {id} was started by this service: use close()")
    pool.server.close(id, None)


def onclose(id: int, callback: Callable[[int], Any]) -> None:
    """Run ``callback(id)`` when CLOSE comes for `id`."""
    _pool().onclose[id] = callback


# --- limits and state ---------------------------------------------------------


def limit(id: int, nbytes: int) -> None:
    """Close `id` (logging it) if more than `nbytes` of it are received and unread."""
    pool = _pool()
    _owned(pool, id).buffer.limit = nbytes


def warning(id: int, callback: Callable[[int, int], Any]) -> None:
    """Call ``callback(id, queued_bytes)`` on WARNING instead of logging it:
    at 1 MiB unsent, each doubling, and 0 once drained."""
    pool = _pool()
    _owned(pool, id).on_warning = callback


def invalid(id: int) -> bool:
    """True if this service does not hold `id`."""
    return id not in _pool().socks


def disconnected(id: int) -> bool:
    """True if this service holds `id` and it has closed (CLOSE or ERROR came)."""
    s = _pool().socks.get(id)
    return s is not None and not (s.connected or s.connecting)


def info() -> list[dict[str, Any]]:
    """Every socket of the node, for netstat: id, kind, state, owner, address,
    bytes read and written, bytes queued, whether reading is paused, and the
    handle its packets go to if it is forwarded (else None)."""
    return _server().info()


# --- UDP ----------------------------------------------------------------------


async def udp(callback: Callable[[bytes, Address], Any], host: str | None = None, port: int = 0) -> int:
    """A UDP socket bound to `host`:`port`; each datagram runs ``callback(data, sender)``."""
    pool = _pool()
    id = pool.server.udp(pool.svc.handle, host, port)
    pool.add(id, False).on_udp = callback
    await pool.opened(id)
    return id


def sendto(id: int, address: Address, data: bytes) -> bool:
    """Send one datagram; False if it could not be sent now (it is then dropped)."""
    return _server().sendto(id, address, data)


def udp_connect(id: int, host: str, port: int) -> None:
    """Give UDP socket `id` a default peer, so that `write` sends to it."""
    _server().udp_connect(id, host, port)
