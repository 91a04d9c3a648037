"""A coroutine reading its socket in a loop reads the fd itself ("pulls") instead of
through the socket server's reader task.

Through the reader task each message costs two rounds of trio's scheduler:
the reader task's (recv, post DATA, wake the coroutine), then the
coroutine's. A coroutine whose last suspension was a read of the same
connection (SocketPool.read decides) pulls instead, and a message costs one.
Every rule of the reader task holds: DATA already posted is read first
(SocketServer.pullable), abandon and close wake the puller (through the dup
of the fd it waits on), and a coroutine closing the socket lets it run first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
from trio.lowlevel import cancel_shielded_checkpoint, wait_readable

from .._core.fiber import Fiber
from .._core.turn import Turn
from ..errors import ServiceExit
from .loops import receive
from .table import Conn

if TYPE_CHECKING:
    from .pool import Sock, SocketPool


async def pull(pool: SocketPool, s: Sock, conn: Conn, want: int | bytes, fiber: Fiber) -> bytes | None:
    """Read `conn` in coroutine `fiber`, until `want` is met; None if the socket ended.

    The coroutine keeps the fd from then on until it parks otherwise or
    ends (its suspend hook, SocketPool.unpull), when the reader task takes
    over again; one that parks between reads never pulls, as handing the
    fd back and forth would cost more than it saves. It waits for the fd in
    a trio task of its own, passing the turn on while it waits, as a
    suspending coroutine does, and takes it back when it can.
    """
    svc = pool.svc
    turn = svc.turn
    server = pool.server
    await svc.carried()
    task = fiber.task
    assert task is not None
    pool.claim(s, want)
    if conn.puller is not fiber:
        server.pull(conn, fiber)
    sock = conn.sock
    assert sock is not None  # pullable: a connected socket
    request = svc.request
    # As trio's streams do, first let one round of the scheduler pass and
    # try the recv then: under load the bytes are there by now, and
    # neither the fd's registration with epoll nor a wait is needed.
    first = True
    try:
        while True:
            s.puller = fiber
            turn.holder = task
            svc.pass_turn(task)
            try:
                if first:
                    await cancel_shielded_checkpoint()
                elif conn.pull_fd is not None and conn.sock is sock:  # (not closed by a handler just run)
                    await wait_readable(conn.pull_fd)
            except trio.ClosedResourceError:
                pass  # closed or abandoned under us: seen below
            finally:
                if turn.holder is None:
                    turn.holder = fiber
                else:
                    await _retake_turn(turn, fiber)
            if svc.dead:
                # Killed while it waited: end quietly, as a coroutine parked
                # in any other primitive does, not with a read that failed.
                raise ServiceExit
            first = False
            s.puller = None
            svc.request = request
            if conn.paused and conn.sock is sock and pool.socks.get(s.id) is s:
                # Paused under us (socket.pause): wait for DATA, which comes
                # through the reader task once reading resumes.
                pool.unpull(fiber)
                s.want = None
                return await pool.wait(s, want)
            if conn.sock is not sock or conn.puller is not fiber or pool.socks.get(s.id) is not s:
                # Coroutines closing it wait until we have run (SocketPool.close).
                for token in s.after_puller:
                    svc.wakeup(token)
                s.after_puller.clear()
                return None
            data = receive(server, conn, sock)
            if data is None:
                # FIN or an error: CLOSE (or ERROR) is posted, and wakes
                # us as it wakes any reader.
                pool.unpull(fiber)
                s.want = None
                rest: bytes | None = await pool.wait(s, want)
                return rest
            if data and pool.feed(s, data):
                result, s.result = s.result, None
                return result
    finally:
        s.want = None
        s.puller = None


async def _retake_turn(turn: Turn, fiber: Fiber) -> None:
    """Hold the service's turn again for `fiber`, once it is free (see Turn.wait_free)."""
    while turn.holder is not None:
        if turn.closed:
            return
        await turn.wait_free()
    turn.holder = fiber
