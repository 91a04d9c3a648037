"""skypy.socketchannel: a client connection for request/response protocols, as skynet's socketchannel.

    # order mode: the server answers in request order (redis, a line protocol)
    channel = Channel("127.0.0.1", 6379, backup=[("127.0.0.1", 6380)])
    reply = await channel.request(b"PING\\r\\n", read_reply)   # read_reply(sock) -> (ok, value)

    # session mode: answers carry the session of their request, in any order
    channel = Channel(host, port, response=read_any)        # read_any(sock) -> (session, ok, value)
    value = await channel.request(packet, session)

The channel dials on first use (or `connect`), tries the backup hosts when
the main one refuses, and dials again on the next request after the
connection drops; a request waiting when it drops fails with
ChannelClosed, never hangs. Readers are awaited in the channel's own
coroutine: ``await sock.read(n)``, ``await sock.readline(sep)``. A channel
belongs to the service that created it and is used from that service only.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Awaitable, Callable, Generic, Protocol, Sequence, TypeVar, cast, overload

from . import socket
from ._api.coroutines import fork, sleep, timeout, wait, wakeup
from ._api.messages import error
from .errors import SkypyError, SocketClosed, SocketError

__all__ = ["Channel", "ChannelClosed", "ChannelError", "ChannelSocket", "OrderReader", "SessionReader"]

Host = tuple[str, int]
Callback = Callable[[bool, Any], None]
# Order mode reads one answer: (ok, value). Session mode reads the next answer: (session, ok, value).
OrderReader = Callable[["ChannelSocket"], Awaitable[tuple[bool, Any]]]
SessionReader = Callable[["ChannelSocket"], Awaitable[tuple[int, bool, Any]]]
Auth = Callable[["ChannelSocket"], Awaitable[None]]

# What a request names its answer by: the reader of its answer in order
# mode (OrderReader), its session in session mode (int).
_K = TypeVar("_K")
_K_contra = TypeVar("_K_contra", contravariant=True)

# A blocking `connect()` retries after this long, doubling up to the maximum.
RETRY_FIRST = 0.1
RETRY_MAX = 10.0


class ChannelError(SkypyError):
    """The server answered a request with an error; `.value` is what the reader returned."""

    def __init__(self, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.value = value


class ChannelClosed(ChannelError):
    """The connection could not be made, dropped, or the channel was closed before the answer."""


class ChannelSocket:
    """One connection as readers and writers see it: reads, and writes gathered into one.

    The first write while the service handles a run of messages goes out at
    once; the writes after it (a burst of pipelined requests, say) wait and
    go out together in one `socket.write` behind that run: the flush is a
    `timeout(0)`, which queues behind the messages already there. A lone
    request pays no delay, a burst pays two syscalls instead of one each.
    """

    __slots__ = ("id", "_parts")

    def __init__(self, id: int) -> None:
        self.id = id
        self._parts: list[bytes] | None = None  # None: nothing written in this run yet

    async def read(self, n: int | None = None) -> bytes:
        """Exactly `n` bytes, or with no `n` whatever has arrived; SocketClosed if it closes first."""
        return await socket.read(self.id, n)

    async def readline(self, sep: bytes = b"\n") -> bytes:
        """The bytes up to `sep`, which is dropped."""
        return await socket.readline(self.id, sep)

    def write(self, data: bytes) -> None:
        """Send `data`, in order with the other writes; see the class for when."""
        if self._parts is None:
            socket.write(self.id, data)
            self._parts = []
            timeout(0, self._flush)
        else:
            self._parts.append(data)

    def _flush(self) -> None:
        parts, self._parts = self._parts, None
        if parts:
            socket.write(self.id, b"".join(parts))


class _Waiter:
    """A callback that parks a coroutine until it is called: how `request` and `connect` wait."""

    __slots__ = ("done", "ok", "value")

    def __init__(self) -> None:
        self.done = False
        self.ok = False
        self.value: Any = None

    def __call__(self, ok: bool, value: Any) -> None:
        self.done, self.ok, self.value = True, ok, value
        wakeup(self)

    async def result(self) -> Any:
        if not self.done:
            await wait(self)
        if self.ok:
            return self.value
        if isinstance(self.value, ChannelClosed):
            raise self.value
        raise ChannelError(f"the server answered with an error: {self.value!r}", self.value)


class _Answers(Protocol[_K_contra]):
    """How a channel pairs answers with the requests waiting for them; one class per mode."""

    def expect(self, key: _K_contra, callback: Callback | None) -> bool:
        """Wait for the answer named by `key`; False if one so named is already awaited."""

    def forget(self, key: _K_contra, callback: Callback) -> None:
        """A request given up before its answer came."""

    def waiting(self, session: int) -> bool:
        """Whether an answer for `session` is still due."""

    def take_all(self) -> list[Callback | None]:
        """Forget every awaited answer; their callbacks, to fail them."""

    def dropped(self) -> None:
        """The connection closed."""

    async def dispatch(self, sock: ChannelSocket, where: Callable[[], str]) -> None:
        """Read answers from `sock` and hand each to its callback, until reading fails."""


class _InOrder:
    """Order mode: answers come in request order, each read by its request's own reader."""

    __slots__ = ("fifo", "idle")

    def __init__(self) -> None:
        self.fifo: deque[tuple[OrderReader, Callback | None]] = deque()
        # The dispatcher waits on this when no answer is due.
        self.idle = object()

    def expect(self, key: OrderReader, callback: Callback | None) -> bool:
        self.fifo.append((key, callback))
        wakeup(self.idle)
        return True

    def forget(self, key: OrderReader, callback: Callback) -> None:
        pass  # its answer must still be read, in its turn, to reach the next one

    def waiting(self, session: int) -> bool:
        return False

    def take_all(self) -> list[Callback | None]:
        callbacks = [callback for _, callback in self.fifo]
        self.fifo.clear()
        return callbacks

    def dropped(self) -> None:
        # Wake an idle dispatcher, which is not reading and would not notice.
        wakeup(self.idle)

    async def dispatch(self, sock: ChannelSocket, where: Callable[[], str]) -> None:
        fifo = self.fifo
        while True:
            if not fifo:
                if socket.disconnected(sock.id):
                    return
                await wait(self.idle)
                continue
            reader, callback = fifo[0]
            ok, value = await reader(sock)
            fifo.popleft()
            if callback is not None:
                callback(ok, value)


class _BySession:
    """Session mode: each answer carries its request's session, and answers come in any order."""

    __slots__ = ("read", "callbacks")

    def __init__(self, read: SessionReader) -> None:
        self.read = read
        self.callbacks: dict[int, Callback | None] = {}

    def expect(self, key: int, callback: Callback | None) -> bool:
        if key in self.callbacks:
            return False
        self.callbacks[key] = callback
        return True

    def forget(self, key: int, callback: Callback) -> None:
        if self.callbacks.get(key) is callback:
            del self.callbacks[key]

    def waiting(self, session: int) -> bool:
        return session in self.callbacks

    def take_all(self) -> list[Callback | None]:
        callbacks = list(self.callbacks.values())
        self.callbacks.clear()
        return callbacks

    def dropped(self) -> None:
        pass  # the dispatcher is reading, and sees it

    async def dispatch(self, sock: ChannelSocket, where: Callable[[], str]) -> None:
        read = self.read
        while True:
            session, ok, value = await read(sock)
            if session not in self.callbacks:
                error(f"socketchannel {where()}: answer for unknown session {session} dropped")
                continue
            callback = self.callbacks.pop(session)
            if callback is not None:
                callback(ok, value)


class Channel(Generic[_K]):
    """One client connection, in order mode (no `response`) or session mode (`response` given).

    The mode is part of the type: `Channel[OrderReader]` or `Channel[int]`, what a request names its answer by.
    """

    @overload
    def __init__(
        self: Channel[OrderReader],
        host: str,
        port: int,
        *,
        backup: Sequence[Host] = (),
        response: None = None,
        auth: Auth | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: Channel[int],
        host: str,
        port: int,
        *,
        backup: Sequence[Host] = (),
        response: SessionReader,
        auth: Auth | None = None,
    ) -> None: ...

    def __init__(
        self,
        host: str,
        port: int,
        *,
        backup: Sequence[Host] = (),
        response: SessionReader | None = None,
        auth: Auth | None = None,
    ) -> None:
        self._hosts: list[Host] = [(host, port), *backup]
        answers: _Answers[OrderReader] | _Answers[int] = _InOrder() if response is None else _BySession(response)
        # The overloads tie K to the mode chosen here, which mypy cannot follow.
        self._answers = cast("_Answers[_K]", answers)
        self._auth = auth
        self._sock: ChannelSocket | None = None  # the live connection
        self._dialing = False
        self._closed = False
        self._queue: list[bytes] = []  # written once the dial succeeds
        self._connect_waiters: list[_Waiter] = []
        # Called with the reason when a live connection drops (or is dropped
        # with `disconnect`): a cluster sender tells its proxies the link died.
        self.drop_hooks: list[Callable[[str], object]] = []

    def __repr__(self) -> str:
        host, port = self._hosts[0]
        return f"<Channel {host}:{port} {'connected' if self.connected else 'idle'}>"

    @property
    def connected(self) -> bool:
        """Whether a connection is up now."""
        return self._sock is not None

    def waiting(self, session: int) -> bool:
        """Whether (in session mode) an answer for `session` is still due."""
        return self._answers.waiting(session)

    # --- requests ---------------------------------------------------------

    def post(
        self,
        data: bytes | Sequence[bytes],
        response: _K | None = None,
        callback: Callback | None = None,
    ) -> None:
        """Write a request now, or as soon as the connection is up, without waiting for its answer.

        `response` is the request's session (session mode) or the reader of its
        answer (order mode); None expects no answer. ``callback(ok, value)``
        gets the answer, or ``(False, ChannelClosed)`` if the connection fails
        first. Requests go out in the order they were posted.
        """
        if self._closed:
            raise ChannelClosed(f"{self!r} is closed")
        if response is not None and not self._answers.expect(response, callback):
            raise ValueError(f"session {response} is already waiting on {self!r}")
        payload = data if isinstance(data, bytes) else b"".join(data)
        if self._sock is not None:
            self._sock.write(payload)
            return
        self._queue.append(payload)
        self._dial()

    async def request(self, data: bytes | Sequence[bytes], response: _K | None = None) -> Any:
        """skynet's ``channel:request``: write, then wait for the answer (None if none is expected).

        ChannelError if the server answered with an error; ChannelClosed if
        the connection failed first.
        """
        if response is None:
            self.post(data)
            return None
        waiter = _Waiter()
        self.post(data, response, waiter)
        try:
            return await waiter.result()
        finally:
            if not waiter.done:
                self._answers.forget(response, waiter)

    # --- the connection -----------------------------------------------------

    async def connect(self, once: bool = False) -> None:
        """Wait until connected; with `once`, ChannelClosed if one round of dialling fails,
        else keep retrying with growing pauses."""
        delay = RETRY_FIRST
        while self._sock is None:
            if self._closed:
                raise ChannelClosed(f"{self!r} is closed")
            waiter = _Waiter()
            self._connect_waiters.append(waiter)
            self._dial()
            try:
                await waiter.result()
            except ChannelClosed:
                if once:
                    raise
                await sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    def changehost(self, host: str, port: int, backup: Sequence[Host] | None = None) -> None:
        """Dial `host`:`port` from now on; the current connection is dropped (its waiters fail)."""
        self._hosts = [(host, port), *(self._hosts[1:] if backup is None else backup)]
        self.disconnect("the host changed")

    def disconnect(self, reason: str) -> None:
        """Drop the connection now, as if it had dropped: waiting requests fail with
        ChannelClosed naming `reason`, and the next request dials again."""
        sock, self._sock = self._sock, None
        if sock is not None:
            self._lost(reason)
            socket.shutdown(sock.id)  # its dispatcher sees it close and releases it

    async def close(self) -> None:
        """Close for good: waiting requests fail with ChannelClosed, later ones are refused."""
        self._closed = True
        self._fail_all("the channel was closed")
        if self._sock is not None:
            await socket.close(self._sock.id)

    def _dial(self) -> None:
        if not self._dialing:
            self._dialing = True
            fork(self._run)

    async def _run(self) -> None:
        """One connection's life: dial, authenticate, flush the queue, read answers until it drops."""
        while True:
            hosts = self._hosts
            try:
                sock = await self._open(hosts)
            except ChannelClosed as exc:
                self._dialing = False
                self._fail_all(str(exc))
                return
            if self._hosts is hosts:
                break
            await socket.close(sock.id)  # changehost() during the dial: dial the new address
        self._dialing = False
        self._sock = sock
        socket.onclose(sock.id, self._dropped)
        if self._queue:
            socket.write(sock.id, b"".join(self._queue))
            self._queue.clear()
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            waiter(True, None)
        reason = "the connection dropped"
        try:
            await self._answers.dispatch(sock, self._where)
        except (SocketClosed, SocketError):
            pass
        except Exception as exc:
            reason = f"the answer could not be read: {type(exc).__name__}: {exc}"
            error(f"socketchannel {self._where()}: {reason}; closing the connection")
        finally:
            # Synchronously, so a request posted from now on waits for a fresh dial
            # instead of failing with the waiters of the dead connection. Unless
            # changehost() has let this connection go already: the waiters are
            # then the next connection's.
            if self._sock is sock:
                self._sock = None
                self._lost(reason)
            socket.shutdown(sock.id)
            await socket.close(sock.id)

    async def _open(self, hosts: list[Host]) -> ChannelSocket:
        """Connect to the main host, else to each backup in turn, and authenticate."""
        failures = []
        for host, port in hosts:
            try:
                id = await socket.open(host, port)
            except SocketError as exc:
                failures.append(str(exc))
                continue
            sock = ChannelSocket(id)
            if self._closed:
                await socket.close(id)
                break
            if self._auth is not None:
                try:
                    await self._auth(sock)
                except Exception as exc:
                    await socket.close(id)
                    failures.append(f"auth with {host}:{port} failed: {type(exc).__name__}: {exc}")
                    continue
            return sock
        raise ChannelClosed("; ".join(failures) or f"{self!r} is closed")

    def _dropped(self, id: int) -> None:
        """CLOSE came: tell the dispatcher, which may not be reading."""
        self._answers.dropped()

    def _lost(self, reason: str) -> None:
        """The live connection is gone: fail its waiters, then tell the drop hooks."""
        self._fail_all(reason)
        for hook in self.drop_hooks:
            hook(reason)

    def _fail_all(self, reason: str) -> None:
        """Fail every request waiting for an answer, and every write still queued."""
        failure = ChannelClosed(f"socketchannel {self._where()}: {reason}")
        callbacks = [*self._answers.take_all(), *self._connect_waiters]
        self._connect_waiters.clear()
        self._queue.clear()
        for callback in callbacks:
            if callback is not None:
                callback(False, failure)

    def _where(self) -> str:
        host, port = self._hosts[0]
        return f"{host}:{port}"
