"""The gate: listens for clients and turns their byte streams into packets.

    gate = await skypy.newservice("gate")
    host, port = await skypy.call(gate, "lua", "open",
                                  {"address": "127.0.0.1", "port": 0, "maxclient": 64})

Packets are netpack frames (a 2-byte big-endian length, then the body). The
caller of `open` is the watchdog (unless the table names another) and hears
``socket open fd addr``, ``socket close fd``, ``socket error fd msg``,
``socket warning fd bytes`` and, for connections not forwarded,
``socket data fd packet``, as "lua" sends. Commands (``lua`` protocol):
`open{address, port, maxclient, nodelay, backlog, watchdog, maxqueue, timeout}`, `close` (stop
listening), `forward(fd, client=0, agent=caller)`: the connection's packets
go to `agent` as "client" messages ``(session 0, source client, fd,
packet)``, `accept(fd)`: read it, packets to the watchdog, `kick(fd)`.
Every connection announced by ``open`` is followed by exactly one ``close``.

The gate decides where each connection's packets go; the socket server
cuts and sends them (`skypy.socket.forward`), so no step of the gate stands
between a client and its agent. A connection is read only as fast as its
consumer (its agent, or the watchdog) keeps up: once more than `maxqueue`
messages (1024) wait in the consumer's mailbox, reading stops, and TCP holds
the client back; it reads on once the consumer has taken what was queued. With
`timeout`, a connection that sends nothing for that many seconds is closed.
"""

from __future__ import annotations

from typing import Any

import skypy
from skypy import socket
from skypy.socket import ERROR

# How long a kicked connection may take to flush what was written to it
# before the rest is dropped: a client that stopped reading must not keep
# its fd and its maxclient slot for ever.
KICK_FLUSH_SECONDS = 5.0


class Connection:
    """One client connection, from accept to close."""

    __slots__ = ("fd", "address", "agent", "started", "bytes_read", "quiet_since")

    def __init__(self, fd: int, address: str) -> None:
        self.fd = fd
        self.address = address
        self.agent: int | str | None = None  # None: packets go to the watchdog
        self.started = False
        self.bytes_read = 0  # as the last sweep found it (`timeout`)
        self.quiet_since = skypy.now()  # the first sweep that found it silent


class Gate:
    def __init__(self) -> None:
        self.watchdog: int | str = 0
        self.listen_id: int | None = None
        self.maxclient = 1024
        self.maxqueue = socket.MAXQUEUE
        self.timeout: float | None = None
        self.connections: dict[int, Connection] = {}
        self.library_dispatch: Any = None

    # --- commands -------------------------------------------------------

    async def open(self, source: int, conf: dict[str, Any]) -> tuple[str, int]:
        if self.listen_id is not None:
            raise skypy.SkypyError("gate: already listening; close it first")
        self.maxclient = conf.get("maxclient", 1024)
        self.maxqueue = conf.get("maxqueue", socket.MAXQUEUE)
        self.timeout = conf.get("timeout")
        self.watchdog = conf.get("watchdog", source)
        if conf.get("nodelay") is False:
            skypy.error("gate: nodelay = false ignored: skypy sets TCP_NODELAY on every connection")
        id, host, port = await socket.listen(conf.get("address", "0.0.0.0"), conf.get("port", 0), conf.get("backlog"))
        if self.library_dispatch is None:
            # The watchdog hears of a client's socket errors; every event
            # still goes on to skypy.socket's handler, which listen() has
            # just installed.
            self.library_dispatch = skypy.dispatch("socket", self.on_socket)
        await socket.start(id, self.accepted)
        self.listen_id = id
        skypy.error(f"Listen on {host}:{port}")
        if host in ("0.0.0.0", "::"):
            skypy.error(f"gate: {host}:{port} is every interface: any host that reaches it may connect")
        if self.timeout:
            skypy.timeout(self.timeout / 4, self.sweep)
        return host, port

    async def close(self, source: int) -> None:
        if self.listen_id is not None:
            id, self.listen_id = self.listen_id, None
            await socket.close(id)

    async def forward(self, source: int, fd: int, client: int = 0, agent: int | str | None = None) -> None:
        c = self.connection(fd)
        c.agent = agent or source
        socket.forward(fd, c.agent, client or 0, "client", fd, maxqueue=self.maxqueue)
        skypy.fork(self.close_when_gone, c, c.agent)
        await self.start(c)

    async def close_when_gone(self, c: Connection, agent: int | str) -> None:
        """Close `c` if its agent ends first (killed, crashed in main): its client would
        otherwise wait for answers that never come.

        A debug LINK is answered only by the agent's end, as skynet's is; an
        agent that replaces the debug protocol must leave LINK unanswered.
        """
        try:
            await skypy.call(agent, "debug", "LINK")
        except skypy.CallError:
            pass
        if self.connections.get(c.fd) is c and c.agent == agent:
            skypy.error(f"gate: the agent of {c.address} (fd {c.fd}) is gone: connection closed")
            await self.kick(0, c.fd)

    async def accept(self, source: int, fd: int) -> None:
        c = self.connection(fd)
        c.agent = None
        socket.forward(fd, self.watchdog, skypy.self(), "lua", "socket", "data", fd, maxqueue=self.maxqueue)
        await self.start(c)

    async def kick(self, source: int, fd: int) -> None:
        c = self.connections.get(fd)
        if c is None:
            return
        if c.started:
            await socket.close(fd, KICK_FLUSH_SECONDS)  # CLOSE comes, and closed() reports it
        else:
            socket.close_fd(fd)
            self.gone(fd)

    # --- connections ----------------------------------------------------

    def connection(self, fd: int) -> Connection:
        c = self.connections.get(fd)
        if c is None:
            raise skypy.SkypyError(f"gate: no connection {fd} (closed, or never opened)")
        return c

    async def start(self, c: Connection) -> None:
        if not c.started:
            c.started = True
            await socket.start(c.fd)
            socket.onclose(c.fd, self.closed)
            socket.warning(c.fd, lambda fd, size: self.tell("warning", fd, size))

    def accepted(self, fd: int, address: tuple[str, int]) -> None:
        addr = f"{address[0]}:{address[1]}"
        if len(self.connections) >= self.maxclient:
            socket.close_fd(fd)
            skypy.error(f"gate: maxclient {self.maxclient} reached, refused {addr}")
            return
        self.connections[fd] = Connection(fd, addr)
        self.tell("open", fd, addr)

    async def closed(self, fd: int) -> None:
        # Close our end before telling anyone, so no connection lingers in
        # CLOSE-WAIT once the peer has gone, and a watchdog that hears
        # "close" knows the fd is closed.
        await socket.close(fd)
        self.gone(fd)

    def gone(self, fd: int) -> None:
        if self.connections.pop(fd, None) is not None:
            self.tell("close", fd)

    def sweep(self) -> None:
        """Close the connections that have sent nothing for `timeout` seconds."""
        if self.listen_id is None or not self.timeout:
            return
        now = skypy.now()
        sockets = {s["id"]: s for s in socket.info()}
        for c in list(self.connections.values()):
            s = sockets.get(c.fd)
            if s is None:
                continue  # closing: its CLOSE is on the way
            # A paused client is not idle: it is not being read.
            if s["read"] != c.bytes_read or s["paused"]:
                c.bytes_read = s["read"]
                c.quiet_since = now
            elif now - c.quiet_since >= self.timeout:
                c.quiet_since = float("inf")  # closed once
                skypy.error(f"gate: {c.address} (fd {c.fd}) sent nothing for {self.timeout} s: closed")
                skypy.fork(self.kick, 0, c.fd)
        skypy.timeout(self.timeout / 4, self.sweep)

    # --- the watchdog --------------------------------------------------

    def tell(self, what: str, fd: int, *args: Any) -> None:
        skypy.send(self.watchdog, "lua", "socket", what, fd, *args)

    # --- socket events --------------------------------------------------

    def on_socket(self, session: int, source: int, kind: int, id: int, *args: Any) -> Any:
        if kind == ERROR and id in self.connections:
            self.tell("error", id, args[0])  # CLOSE follows
        return self.library_dispatch(session, source, kind, id, *args)


async def main() -> None:
    gate = Gate()
    commands = {
        "open": gate.open, "close": gate.close, "forward": gate.forward,
        "accept": gate.accept, "kick": gate.kick,
    }

    async def command(session: int, source: int, cmd: str, *args: Any) -> None:
        # Not dispatch_commands: like skynet's gate, commands need the
        # caller's address (the default watchdog, the default agent).
        fn = commands.get(cmd)
        if fn is None:
            raise skypy.SkypyError(f"gate: unknown command {cmd!r}")
        skypy.ret(*(await fn(source, *args) or ()))

    skypy.dispatch("lua", command)
