"""One task reads every connected TCP socket of the node, as skynet's socket thread does.

A reader task per connection costs a pass of trio's scheduler and a task
switch for every message, and trio registers the fd with epoll anew on each
wait. Instead the sockets being read stay registered with an epoll of our
own, and one task waits for it: each time it wakes, it reads every socket
that has input and posts (delivers) its DATA, so fifty connections with
input cost one task step, not fifty.

Where there is no epoll (not Linux), each connection gets its reader task
(loops.read_loop) instead.
"""

from __future__ import annotations

import select
from typing import TYPE_CHECKING

from trio.lowlevel import wait_readable

from .loops import receive
from .table import Conn

if TYPE_CHECKING:
    from .server import SocketServer

# How many ready sockets one wake-up reads before letting trio run the rest:
# a bound on the task step, not on the sockets read.
BATCH = 256
AVAILABLE = hasattr(select, "epoll")


class PolledReader:
    """Stands in `Conn.reader` for a connection the poller reads: `cancel` stops reading it."""

    __slots__ = ("_poller", "_fd")

    def __init__(self, poller: Poller, fd: int) -> None:
        self._poller = poller
        self._fd = fd

    def cancel(self) -> None:
        """Stop reading this connection (its fd is about to close, or reading pauses)."""
        self._poller.forget(self._fd)


class Poller:
    """The node's TCP reads: an epoll of the connections being read, and the task that waits on it."""

    def __init__(self, server: SocketServer) -> None:
        self._server = server
        self._epoll = select.epoll()
        self._conns: dict[int, Conn] = {}

    def read(self, conn: Conn) -> None:
        """Read `conn` from now on, posting DATA to its owner, until its reader is cancelled."""
        assert conn.sock is not None
        fd = conn.sock.fileno()
        self._epoll.register(fd, select.EPOLLIN)
        self._conns[fd] = conn
        conn.reader = PolledReader(self, fd)

    def forget(self, fd: int) -> None:
        """Stop reading the connection on `fd`."""
        if self._conns.pop(fd, None) is not None and not self._epoll.closed:
            self._epoll.unregister(fd)

    async def run(self) -> None:
        """Wait for input on any socket being read; read each that has some; repeat, for the node's life."""
        epoll = self._epoll
        conns = self._conns
        server = self._server
        delivering = server.node.delivering
        try:
            while True:
                await wait_readable(epoll.fileno())
                with delivering():  # the owners run once the whole batch is read
                    for fd, _ in epoll.poll(0, BATCH):
                        conn = conns.get(fd)
                        if conn is None or conn.sock is None:
                            continue  # no longer read (the batch is a snapshot of the epoll)
                        if not receive(server, conn, conn.sock):
                            self.forget(fd)
        finally:
            epoll.close()
