"""Serving HTTP on skypy.socket: the I/O shell around ServerProtocol.

Each connection is a coroutine of the serving service (or of an agent
service, skynet's httpd pattern): it reads bytes with the phase's timeout,
feeds them to the protocol, runs the handler for each whole request and
writes what the protocol makes of its response. Requests on one
connection are answered one at a time, in order (pipelining). A handler
that raises is answered 500 and logged; the connection carries on.
"""

from __future__ import annotations

import functools
import math
import traceback
from typing import Any, Awaitable, Callable

import trio

from .. import socket, websocket
from .._api import coroutines as _coroutines, lifecycle as _lifecycle, messages as _messages
from .._net.pool import SocketPool
from ._message import Handler, Request, Response
from ._serverproto import Closed, Limits, NeedData, Ready, Reject, Send, ServerProtocol
from .router import Router, WebSocketHandler

# Limits are frozen, so one default instance serves every call.
DEFAULT_LIMITS = Limits()

__all__ = ["agent", "serve", "serve_connection"]


async def serve(
    app: Handler | None = None, host: str = "127.0.0.1", port: int = 0, *,
    agent: str | Callable[..., Awaitable[None]] | None = None, agents: int = 0, limits: Limits = DEFAULT_LIMITS,
    max_message_size: int = websocket.DEFAULT_MAX_MESSAGE_SIZE,
) -> tuple[str, int]:
    """Listen on `host`:`port` (0: any free port) and serve HTTP; returns (host, real port).

    With `app`, the running service serves every connection itself, a
    coroutine each. With `agent` (a service name, or a main), each connection's socket
    id goes to an agent service instead: a new one per connection, which
    exits when it closes, or with `agents` = N one of N started now, in
    turn. The agent module's main is ``http.agent(app)``.
    """
    if (app is None) == (agent is None):
        raise ValueError("serve needs an app or an agent: exactly one of them")
    listen_id, host, port = await socket.listen(host, port)
    if app is not None:
        # A partial, not a closure awaiting serve_connection: one frame less
        # for every resumption of every connection's coroutine.
        accepted = functools.partial(serve_connection, app, limits=limits, max_message_size=max_message_size)
        await socket.start(listen_id, accepted)
        return host, port
    assert agent is not None
    name = agent
    pool = [await _lifecycle.newservice(name) for _ in range(agents)]
    turn = 0

    async def hand_over(id: int, client: tuple[str, int]) -> Any:
        nonlocal turn
        if pool:
            turn = (turn + 1) % len(pool)
            _messages.send(pool[turn], "lua", "connection", id, client[0], client[1], False)
        else:
            # A new agent per connection, which exits once its connection has closed.
            try:
                addr = await _lifecycle.newservice(name)
            except Exception as exc:
                socket.close_fd(id)  # nobody else will: the connection was never handed over
                _messages.error(f"http: no agent for {client[0]}:{client[1]}, connection closed: {exc}")
                return
            _messages.send(addr, "lua", "connection", id, client[0], client[1], True)

    await socket.start(listen_id, hand_over)
    return host, port


def agent(app: Handler, *, limits: Limits = DEFAULT_LIMITS, max_message_size: int = websocket.DEFAULT_MAX_MESSAGE_SIZE
          ) -> Callable[..., Awaitable[None]]:
    """The `main` of an agent service for ``serve(agent=...)``: ``main = http.agent(app)`` in its module.

    It takes ``lua`` ``connection(id, host, port, once)`` messages and serves
    each connection as a coroutine; with `once` the agent exits after it."""

    async def connection(id: int, host: str, port: int, once: bool) -> None:
        try:
            await serve_connection(app, id, (host, port), limits=limits, max_message_size=max_message_size)
        finally:
            if once:
                _lifecycle.exit()

    async def main(*args: Any) -> None:
        _messages.dispatch_commands({"connection": connection})

    return main


class _Watch:
    """One connection's read deadline (inf while no read waits), and whether it passed."""

    __slots__ = ("id", "deadline", "expired")

    def __init__(self, id: int) -> None:
        self.id = id
        self.deadline = math.inf
        self.expired = False


class _Sweeper:
    """A service's HTTP read timeouts, checked by one coroutine of the service.

    A connection's reads are timed by a deadline it writes (two float stores
    per request) rather than a trio deadline of its own, whose moves cost
    several times more, and which would give each connection's coroutine a
    trio task of its own (a cancel scope is a task's). A read past its
    deadline is ended with no bytes (SocketPool.interrupt). The check runs every quarter of the shortest
    timeout (between 10 ms and 1 s) while there are connections, so a read
    times out at most that much late. It runs in the service, so it only
    ever sees a connection suspended: in a read (its deadline set) or in a
    handler (inf), never between the two.
    """

    def __init__(self, handle: int) -> None:
        self.handle = handle
        self.watches: set[_Watch] = set()
        self.period = 1.0
        self.running = False

    @classmethod
    def mine(cls) -> _Sweeper:
        handle = _messages.running().handle
        sweeper = _sweepers.get(handle)
        if sweeper is None:
            sweeper = _sweepers[handle] = cls(handle)
        return sweeper

    def add(self, watch: _Watch, limits: Limits) -> None:
        self.watches.add(watch)
        self.period = min(self.period, max(0.01, min(limits.header_timeout, limits.idle_timeout) / 4))
        if not self.running:
            self.running = True
            _coroutines.fork(self.run)

    def remove(self, watch: _Watch) -> None:
        self.watches.discard(watch)

    async def run(self) -> None:
        try:
            while self.watches:
                await _coroutines.sleep(self.period)
                now = trio.current_time()
                for watch in self.watches:
                    if watch.deadline <= now:
                        watch.deadline = math.inf
                        watch.expired = True
                        SocketPool.mine().interrupt(watch.id)
        finally:
            # Ended: no connection left, or the service is exiting. A later
            # connection starts a new sweeper.
            self.running = False
            if _sweepers.get(self.handle) is self:
                del _sweepers[self.handle]


# Each service's sweeper, by handle, while it has connections.
_sweepers: dict[int, _Sweeper] = {}


async def serve_connection(
    app: Handler, id: int, client: tuple[str, int] = ("", 0), *, limits: Limits = DEFAULT_LIMITS,
    max_message_size: int = websocket.DEFAULT_MAX_MESSAGE_SIZE,
) -> None:
    """Serve HTTP on connection `id` (accepted, not yet started) until it closes; then close it."""
    await socket.start(id)
    # The socket buffers at most a head and a body: a client sending faster
    # than we read cannot grow it past that.
    socket.limit(id, limits.max_header_size + limits.max_body_size + (64 << 10))
    protocol = ServerProtocol(limits)
    eof = False
    reading: NeedData | None = None  # what the read in progress waits for
    watch = _Watch(id)
    sweeper = _Sweeper.mine()
    sweeper.add(watch, limits)
    try:
        while True:
            event = protocol.next_event()
            if type(event) is NeedData:
                if eof:
                    break
                reading = event
                now = trio.current_time()
                watch.deadline = now + protocol.wait_time(event.phase, now)
                try:
                    data = await socket.read(id)
                except socket.SocketClosed as exc:
                    data = exc.rest
                watch.deadline = math.inf
                if watch.expired:
                    break  # interrupted, or the bytes came as the deadline passed: timed out
                reading = None
                eof = not data
                protocol.receive(data)
            elif type(event) is Ready:
                event.request.client = client
                if event.upgrade == "websocket" and isinstance(app, Router):
                    ws_handler = app.find_websocket(event.request)
                    if ws_handler is not None:
                        await _serve_websocket(ws_handler, id, event.request, protocol.upgraded(), max_message_size)
                        return
                if not await _answer(app, id, protocol, event.request):
                    break
                if not protocol.next_request():
                    break
            elif type(event) is Send:
                socket.write(id, event.data)
            elif type(event) is Reject:
                socket.write(id, event.data)
                break
            else:
                assert type(event) is Closed
                break
        if watch.expired and reading is not None:
            socket.write(id, protocol.timed_out(reading.phase))
    finally:
        sweeper.remove(watch)
        await socket.close(id, limits.header_timeout)


async def _answer(app: Handler, id: int, protocol: ServerProtocol, request: Request) -> bool:
    """Run the handler and write its response; False if the connection must close (the body failed)."""
    try:
        response = await app(request)
        if not isinstance(response, Response):
            raise TypeError(f"the handler returned {type(response).__name__}, not an http.Response")
    except Exception:
        _messages.error(f"http: {request.method} {request.target}: handler raised\n{traceback.format_exc().rstrip()}")
        socket.write(id, protocol.error(500))
        return True
    body = response.body
    if isinstance(body, (bytes, bytearray)):
        socket.write(id, protocol.respond(response.status, response.headers, body))
        return True
    socket.write(id, protocol.head(response.status, response.headers, None))
    if not protocol.head_only:
        try:
            async for chunk in body:
                if not socket.write(id, protocol.body(chunk)):
                    return False
        except Exception:
            # The head went out: all the client can be told is that the body ends early.
            _messages.error(f"http: {request.method} {request.target}: body raised\n{traceback.format_exc().rstrip()}")
            return False
    socket.write(id, protocol.end())
    return True


async def _serve_websocket(
    handler: WebSocketHandler, id: int, request: Request, trailing: bytes, max_message_size: int
) -> None:
    try:
        ws = websocket.open_upgraded(id, request.headers, request.target, trailing, max_message_size)
    except ValueError:
        socket.write(id, b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        return
    try:
        await handler(ws)
    except websocket.Closed:
        pass
    except Exception:
        _messages.error(f"http: WebSocket {request.target}: handler raised\n{traceback.format_exc().rstrip()}")
        await ws.close(1011, "internal error")
        return
    await ws.close()
