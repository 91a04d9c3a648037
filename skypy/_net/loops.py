"""The tasks that move one socket's bytes for the socket server: bind, connect,
read, write, accept, and the timer of a close with a timeout.

Each task works on one Conn and reports through ``server.apply``, which
carries out what the rules in table.py decide.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import TYPE_CHECKING, Any

import trio
from trio.lowlevel import wait_readable, wait_writable

from .._core.message import PTYPE_SOCKET
from .table import ACCEPT, DATA, ERROR, UDP, WARNING, Conn, State

if TYPE_CHECKING:
    from .server import SocketServer

# The first read asks for 4096 bytes (Conn.read_size); then, as skynet does,
# a read that fills the request doubles the next one and a read under half of
# it halves it, so bulk streams take few syscalls and chatty ones allocate little.
READ_MIN = 256
READ_MAX = 1 << 20
DATAGRAM_MAX = 65536


async def bind(server: SocketServer, conn: Conn, host: str | None, port: int, backlog: int | None) -> None:
    """Resolve and bind a listening or UDP socket."""
    listening = conn.kind == "listen"
    kind = socket.SOCK_STREAM if listening else socket.SOCK_DGRAM
    try:
        infos = await trio.socket.getaddrinfo(host or "0.0.0.0", port, type=kind, flags=socket.AI_PASSIVE)
        family, type_, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            if listening:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            if listening:
                sock.listen(socket.SOMAXCONN if backlog is None else backlog)
        except BaseException:
            sock.close()
            raise
    except OSError as exc:
        what = "listen" if listening else "UDP bind"
        if conn.state is State.OPENING:
            server.apply(conn, conn.failed(f"{what} on {host}:{port} failed: {exc}"))
        return
    if conn.state is not State.OPENING:  # closed while it was being bound
        sock.close()
        return
    conn.sock = sock
    server.apply(conn, conn.opened_as(sock.getsockname()[:2]))

async def connect(server: SocketServer, conn: Conn, host: str, port: int) -> None:
    """Resolve `host` and connect to the first address that answers."""
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        failure: OSError = OSError(f"no address for {host}")
        for family, type_, proto, _, sockaddr in infos:
            if conn.state is not State.CONNECTING:
                return  # closed meanwhile
            sock = conn.sock = socket.socket(family, type_, proto)
            sock.setblocking(False)
            try:
                await connect_one(sock, sockaddr)
            except trio.ClosedResourceError:
                return  # closed while connecting; _close_fd closed sock
            except OSError as exc:
                conn.sock = None
                sock.close()
                failure = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            server.apply(conn, conn.opened_as(sock.getpeername()[:2]))
            return
        raise failure
    except OSError as exc:
        if conn.state is State.CONNECTING:
            server.apply(conn, conn.failed(f"connect to {host}:{port} failed: {exc}"))

async def read_loop(server: SocketServer, conn: Conn, sock: socket.socket, scope: trio.CancelScope) -> None:
    """Post what the peer sends as DATA, until FIN, an error, or the fd closes."""
    with scope:
        # Wait first, then read: after a read the socket is usually
        # drained, and trying again first would cost a failing syscall.
        while await readable(conn, sock, scope):
            with server.node.delivering():
                if not receive(server, conn, sock):
                    return

def receive(server: SocketServer, conn: Conn, sock: socket.socket) -> bool:
    """One recv from connected TCP `sock`, for the poller or its reader task, inside a
    `Node.delivering` block: what came is posted to the owner as DATA, or its packets to
    their consumer if the connection is forwarded (unless discarded while closing).
    False once reading is over (FIN or an error, already applied)."""
    size = conn.read_size
    try:
        data = sock.recv(size)
    except BlockingIOError:
        return True
    except OSError as exc:
        server.apply(conn, conn.failed(f"read: {exc.strerror or exc}"))
        return False
    n = len(data)
    if not n:
        server.apply(conn, conn.peer_closed())
        return False
    if n == size:
        conn.read_size = min(size * 2, READ_MAX)
    elif n * 2 < size and size > READ_MIN:
        conn.read_size = size // 2
    if conn.received(n):
        forwarding = conn.forwarding
        if forwarding is None:
            server.node.post(conn.owner, (0, 0, PTYPE_SOCKET, (DATA, conn.id, data)))
            return True
        try:
            if not forwarding.deliver(server.node, data):
                server.hold_back(conn, forwarding)
        except Exception as exc:
            server.forwarding_failed(conn, exc)
            return False
    return True

async def write_loop(server: SocketServer, conn: Conn, sock: socket.socket) -> None:
    """Drain the send queue whenever the kernel has room, then let a close complete."""
    queue = conn.queue
    try:
        while queue and conn.sock is sock:
            await wait_writable(sock)
            if conn.sock is not sock:
                return
            while queue:
                view = queue.peek()
                try:
                    sent = sock.send(view)
                except BlockingIOError:
                    sent = 0
                conn.bytes_written += sent
                if queue.consume(sent) == 0:
                    server.post_event(conn.owner, (WARNING, conn.id, 0))
                if sent < len(view):
                    break  # the kernel is full: wait for room
    except trio.ClosedResourceError:
        return
    except OSError as exc:
        server.apply(conn, conn.failed(f"write: {exc.strerror or exc}"))
        return
    finally:
        conn.writing = False
    server.apply(conn, conn.drained())

async def accept_loop(server: SocketServer, conn: Conn, sock: socket.socket, scope: trio.CancelScope) -> None:
    """Take every pending connection; each waits, unread, until a service starts it."""
    with scope:
        while await readable(conn, sock, scope):
            while True:
                try:
                    client, address = sock.accept()
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno == errno.ECONNABORTED:
                        continue
                    # Out of fds, say: tell the owner, and back off rather
                    # than spin on a listener that stays readable.
                    server.post_event(conn.owner, (ERROR, conn.id, f"accept: {exc.strerror or exc}"))
                    await trio.sleep(0.1)
                    break
                client.setblocking(False)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                new = server.table.new("tcp", State.ACCEPTED, conn.owner)
                new.sock = client
                new.address = address[:2]
                new.opened = True
                server.post_event(conn.owner, (ACCEPT, conn.id, new.id, new.address))

async def udp_loop(server: SocketServer, conn: Conn, sock: socket.socket, scope: trio.CancelScope) -> None:
    """Post each datagram as UDP (id, data, sender)."""
    with scope:
        while await readable(conn, sock, scope):
            try:
                data, address = sock.recvfrom(DATAGRAM_MAX)
            except OSError:
                # Would block, or an ICMP error from an earlier send
                # (ECONNREFUSED): neither ends a UDP socket.
                continue
            conn.bytes_read += len(data)
            server.post_event(conn.owner, (UDP, conn.id, data, address[:2]))

async def close_timer(server: SocketServer, conn: Conn, timer: trio.CancelScope) -> None:
    """A close that has not flushed by its deadline becomes a shutdown."""
    with timer:
        await trio.sleep_forever()
    if conn.timer is timer and conn.state is State.HALFCLOSE:
        conn.timer = None
        server.apply(conn, conn.shutdown())

async def readable(conn: Conn, sock: socket.socket, scope: trio.CancelScope) -> bool:
    """Wait until `sock` has input; False once the task reading it should stop.

    Checked before the wait, as the fd may close before the task first runs,
    and after, as it may close (or be abandoned) while the task is being woken.
    """
    if conn.reader is not scope:
        return False
    try:
        await wait_readable(sock)
    except trio.ClosedResourceError:
        return False
    return conn.reader is scope


async def connect_one(sock: socket.socket, address: tuple[Any, ...]) -> None:
    try:
        sock.connect(address)
    except BlockingIOError:
        await wait_writable(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err)) from None
