"""The socket server's books: socket ids, and the state machine of each socket.

Sans I/O, like sendqueue.py: every rule of the close protocol (when the fd
closes, who hears CLOSE and how often, what a close waits for; see "The
close protocol" in docs/architecture.md) is decided here, and returned as a
list of effects that server.py carries out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from ..errors import SocketError
from .sendqueue import SendQueue

if TYPE_CHECKING:
    import socket

    import trio

    from .forwarding import Forwarding
    from .poller import PolledReader

__all__ = [
    "ACCEPT", "BEHIND", "CLOSE", "CONNECT", "DATA", "ERROR", "UDP", "WARNING",
    "Conn", "Effect", "Event", "SocketTable", "State", "WRITABLE",
]

# The PTYPE_SOCKET event kinds, skynet's numbers. A payload is
# (kind, id, *details): DATA (id, bytes), CONNECT (id, address),
# CLOSE (id), ACCEPT (listen id, new id, peer address), ERROR (id, reason),
# UDP (id, bytes, sender address), WARNING (id, queued bytes); and skypy's
# own BEHIND (id, consumer): a forwarded connection's consumer is behind and
# its reading paused (forwarding.py).
DATA = 1
CONNECT = 2
CLOSE = 3
ACCEPT = 4
ERROR = 5
UDP = 6
WARNING = 7
BEHIND = 8

ID_MAX = 0x7FFFFFFF


class State(enum.Enum):
    """Where one socket is in its life."""

    OPENING = "opening"  # a listen or UDP socket being resolved and bound
    CONNECTING = "connecting"
    LISTEN = "listen"
    ACCEPTED = "accepted"  # connected, but not read until a service starts it
    CONNECTED = "connected"
    HALFCLOSE_READ = "halfclose_read"  # the peer sent FIN: reads are over, writes go on
    HALFCLOSE = "halfclose"  # we closed: input discarded, writes refused, the queue drains
    CLOSED = "closed"  # the fd is closed; the id lives until its owner closes it

    # Members are singletons: hash them by identity, in C, not by name in
    # Python (enum's default), as `writable` asks on every write.
    __hash__ = object.__hash__


class Effect(enum.Enum):
    """What the I/O shell must do after a transition (besides posting the events)."""

    CLOSE_FD = "close the OS socket"
    RELEASE = "forget the id"
    NOTIFY = "answer the coroutines waiting in close"
    FLUSH = "drain the send queue"
    READ = "start reading (or accepting)"
    STOP_READ = "stop reading (or accepting)"


# Looked up once: reading an enum member off its class costs 50 ns in CPython 3.11.
CONNECTED: Final = State.CONNECTED

# A PTYPE_SOCKET payload for the owner, (kind, id, *details) as above: a
# transition returns these among its Effects, in the order they happen.
Event = tuple[Any, ...]

# Where `write` is accepted: queued while connecting or not yet started,
# still sent after the peer's FIN; refused once we close.
WRITABLE = frozenset({State.CONNECTING, State.ACCEPTED, State.CONNECTED, State.HALFCLOSE_READ})
# Where the fd is a live TCP connection, so a close may have to drain a queue.
STREAMING = frozenset({State.ACCEPTED, State.CONNECTED, State.HALFCLOSE_READ})


class Conn:
    """One socket: its state and owner, its send queue and counters.

    `owner` is the handle that hears the socket's events; 0 while the socket
    is in transit between services (abandoned), when events are not posted.
    """

    __slots__ = (
        "id", "kind", "state", "owner", "sock", "queue", "address",
        "bytes_read", "bytes_written", "opened", "close_posted", "close_requested",
        "closers", "writing", "reader", "timer", "peer", "read_size",
        "paused", "forwarding", "unread",
    )

    def __init__(self, id: int, kind: str, state: State, owner: int) -> None:
        self.id = id
        self.kind = kind  # "tcp", "listen" or "udp"
        self.state = state
        self.owner = owner
        self.sock: socket.socket | None = None
        self.queue = SendQueue()
        self.address: tuple[str, int] | None = None
        self.bytes_read = 0
        self.bytes_written = 0
        # Reached CONNECTED or LISTEN once: only such a socket can close;
        # one that never opened ends with ERROR alone.
        self.opened = False
        self.close_posted = False  # the owner has been sent its one CLOSE
        self.close_requested = False  # a service closed the id: release it when the fd closes
        self.closers: list[tuple[int, int]] = []  # (handle, session) waiting in close
        self.writing = False  # a writer task is draining the queue
        # What reads (or accepts): the cancel scope of its task, or its place in the poller.
        self.reader: trio.CancelScope | PolledReader | None = None
        self.timer: trio.CancelScope | None = None  # the cancel scope of a close timeout
        self.peer: tuple[str, int] | None = None  # a UDP socket's default destination
        self.read_size = 4096  # the next recv's size, adapted to the traffic (loops.receive)
        # Reading is paused (`pause`): the peer's bytes wait in the kernel,
        # whose full buffers stop the peer (TCP backpressure).
        self.paused = False
        # Set by `SocketServer.forward`: the input is cut into packets and
        # sent to their consumer instead of posted to the owner as DATA.
        self.forwarding: Forwarding | None = None
        # Read while forwarded but not sent on when the owner abandoned it:
        # the next owner gets it as its first DATA.
        self.unread = b""

    def __repr__(self) -> str:
        return f"<Conn {self.id} {self.kind} {self.state.value} owner={self.owner:#x}>"

    @property
    def writable(self) -> bool:
        return self.state in WRITABLE

    # --- transitions ------------------------------------------------------

    def opened_as(self, address: tuple[str, int]) -> list[Effect | Event]:
        """Connecting or binding succeeded."""
        self.address = address
        self.opened = True
        if self.state is State.OPENING and self.kind == "listen":
            self.state = State.LISTEN
            return [(CONNECT, self.id, address)]
        self.state = State.CONNECTED
        effects: list[Effect | Event] = [(CONNECT, self.id, address)]
        if not self.paused:
            effects.append(Effect.READ)
        if self.queue:
            effects.append(Effect.FLUSH)
        return effects

    def start(self, owner: int) -> list[Effect | Event]:
        """`owner` takes the socket and reads it; SocketError if it cannot be started."""
        state = self.state
        if state is State.CLOSED:
            raise SocketError(f"socket {self.id} closed before it was started")
        if state in (State.OPENING, State.CONNECTING, State.HALFCLOSE):
            raise SocketError(f"socket {self.id} cannot be started while {state.value}")
        self.owner = owner
        effects: list[Effect | Event] = [(CONNECT, self.id, self.address)]
        if self.unread:
            effects.append((DATA, self.id, self.unread))
            self.unread = b""
        if state is State.ACCEPTED:
            self.state = State.CONNECTED
            if not self.paused:
                effects.append(Effect.READ)
        elif state is State.LISTEN and self.reader is None:
            effects.append(Effect.READ)
        elif state is State.HALFCLOSE_READ:
            # The reads ended under the old owner; the new one hears it too.
            self.close_posted = True
            effects.append((CLOSE, self.id))
        return effects

    def abandon(self) -> list[Effect | Event]:
        """The owner lets the socket go, unread, until another service starts it."""
        self.owner = 0
        self.paused = False  # the old owner's pause: the next owner reads when it starts
        # The next owner reads the bytes itself, starting with those of a
        # packet cut in half and any held for a consumer that was behind.
        if self.forwarding is not None:
            self.unread = self.forwarding.unsent()
            self.forwarding = None
        if self.state is State.CONNECTED:
            self.state = State.ACCEPTED
            return [Effect.STOP_READ]
        if self.state is State.LISTEN:
            return [Effect.STOP_READ]
        return []

    def close(self, closer: tuple[int, int] | None) -> list[Effect | Event]:
        """A service closes the id: flush what is queued, then close; `closer` waits for it."""
        self.close_requested = True
        if closer is not None:
            self.closers.append(closer)
        state = self.state
        if state is State.CLOSED:
            return [Effect.NOTIFY, Effect.RELEASE]
        if state is State.HALFCLOSE:
            return []  # already draining; this closer is answered with the first
        if state in STREAMING and self.queue:
            # Keep reading to discard what the peer sends: closing an fd
            # with unread input makes the kernel send RST, and the peer may
            # then lose the tail of what we sent.
            self.state = State.HALFCLOSE
            if self.paused:
                self.paused = False
                return [Effect.FLUSH, Effect.READ]
            return [Effect.FLUSH]
        return self._finish()

    def pause(self) -> list[Effect | Event]:
        """Stop reading the peer until `resume`: what it sends waits in the kernel."""
        if self.paused or self.kind != "tcp":
            return []
        self.paused = True
        return [Effect.STOP_READ] if self.state is State.CONNECTED else []

    def resume(self) -> list[Effect | Event]:
        """Read the peer again after `pause`."""
        if not self.paused:
            return []
        self.paused = False
        return [Effect.READ] if self.state is State.CONNECTED else []

    def shutdown(self) -> list[Effect | Event]:
        """Close at once, dropping whatever is unsent; the id lives on until closed."""
        if self.state is State.CLOSED:
            return []
        self.queue.clear()
        return self._finish()

    def drained(self) -> list[Effect | Event]:
        """The writer emptied the queue: a pending close completes now."""
        if self.state is State.HALFCLOSE and not self.queue:
            return self._finish()
        return []

    def peer_closed(self) -> list[Effect | Event]:
        """The peer sent FIN: reads are over and the owner hears CLOSE; writes go on."""
        if self.state is State.CONNECTED:
            self.state = State.HALFCLOSE_READ
            self.close_posted = True
            return [(CLOSE, self.id)]
        return []  # HALFCLOSE: we are closing anyway; CLOSE comes when the fd does

    def failed(self, reason: str) -> list[Effect | Event]:
        """An I/O error: ERROR to the owner, then the socket closes (CLOSE if not yet sent)."""
        if self.state is State.CLOSED:
            return []
        self.queue.clear()
        return [(ERROR, self.id, reason), *self._finish()]

    def _finish(self) -> list[Effect | Event]:
        """The fd closes now."""
        self.state = State.CLOSED
        effects: list[Effect | Event] = [Effect.CLOSE_FD]
        if self.opened and not self.close_posted:
            self.close_posted = True
            effects.append((CLOSE, self.id))
        effects.append(Effect.NOTIFY)
        if self.close_requested:
            effects.append(Effect.RELEASE)
        return effects

    def received(self, nbytes: int) -> bool:
        """Count `nbytes` read from the peer; True if they go to the owner, False if discarded."""
        self.bytes_read += nbytes
        return self.state is CONNECTED and self.owner != 0

    def info(self) -> dict[str, Any]:
        """The counters netstat shows for this socket, whether its reading is paused, and
        where its packets go if it is forwarded."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "owner": self.owner,
            "address": self.address,
            "read": self.bytes_read,
            "written": self.bytes_written,
            "queued": len(self.queue),
            "paused": self.paused,
            "forwarded_to": None if self.forwarding is None else self.forwarding.dest,
        }


class SocketTable:
    """Socket ids → Conn. Ids increase and wrap at 2^31-1 skipping live ones, as
    skynet's do, so a released id is not named again for 2^31 allocations."""

    __slots__ = ("conns", "_last_id")

    def __init__(self) -> None:
        self.conns: dict[int, Conn] = {}
        self._last_id = 0

    def new(self, kind: str, state: State, owner: int) -> Conn:
        """A Conn with a fresh id."""
        if len(self.conns) >= ID_MAX:
            raise SocketError("socket id space exhausted")
        id = self._last_id
        while True:
            id = id + 1 if id < ID_MAX else 1
            if id not in self.conns:
                break
        self._last_id = id
        conn = self.conns[id] = Conn(id, kind, state, owner)
        return conn

    def get(self, id: int) -> Conn | None:
        return self.conns.get(id)

    def release(self, id: int) -> None:
        self.conns.pop(id, None)

    def __iter__(self) -> Iterator[Conn]:
        # Over a copy: closing a socket while iterating may release its id.
        return iter(list(self.conns.values()))

    def __len__(self) -> int:
        return len(self.conns)
