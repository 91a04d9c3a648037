"""The service API: module-level functions that act for the service running them.

The current service is found through a context variable, so service code
reads like skynet's Lua: ``await skypy.call(addr, "lua", "get", key)``.
This module holds messaging and answering; lifecycle.py and coroutines.py beside it
hold the rest.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any, Callable, Literal

import trio
from trio.lowlevel import current_task

from .._core.bounded import set_limit
from .._core.current import current
from .._core.message import address
from .._core.node import CallMeter
from .._core.protocol import Handler, Packer, Unpacker
from .._core.request import ServedRequest
from .._core.service import NOT_YET, NotYet, Service
from ..errors import CallError, ResponseError, ServiceNotFound, SkypyError
from .tracing import marker

Address = int | str
# How many calls answered without suspending run before one trio checkpoint.
INLINE_CALLS_PER_CHECKPOINT = 32

__all__ = [
    "Responder", "call", "dispatch", "dispatch_commands", "error", "getenv", "ignoreret", "mailbox_limit",
    "now", "rawcall", "redirect", "register_protocol", "response", "ret", "self", "send", "setenv",
]


def running() -> Service:
    """The service whose code is running; a clear error outside any service."""
    try:
        return current.get()
    except LookupError:
        raise _outside_any_service() from None


def _outside_any_service() -> SkypyError:
    return SkypyError(
        "not inside a skypy service: call this from service code "
        "or inside `async with skypy.open_node()`"
    )


def self() -> int:
    """This service's handle."""
    return running().handle


# --- messages -------------------------------------------------------------


def send(addr: Address, ptype: str | int, *args: Any) -> None:
    """Send a message without waiting; to a dead or unknown address it is logged and dropped."""
    try:
        svc = current.get()  # running(), inlined: this is the hottest path there is
    except LookupError:
        raise _outside_any_service() from None
    node = svc.node
    if type(addr) is not int:
        try:
            addr = node.resolve(addr)
        except ServiceNotFound as exc:
            node.log(svc.handle, f"send dropped: {exc}")
            return
    pid, pack = svc.protocols.senders[ptype]
    if svc.request.trace is not None:
        node.post(addr, marker(svc, "send", addr))
    node.post(addr, (svc.handle, 0, pid, args if pack is None else pack(*args)))


def redirect(addr: Address, source: int, ptype: str | int, session: int, *args: Any) -> None:
    """Send a message that appears to come from `source` with `session` (skynet's redirect)."""
    try:
        svc = current.get()  # running(), inlined: a gate redirects every client packet
    except LookupError:
        raise _outside_any_service() from None
    pid, pack = svc.protocols.senders[ptype]
    node = svc.node
    node.post(addr if type(addr) is int else node.resolve(addr), (source, session, pid, args if pack is None else pack(*args)))


def values_of(values: tuple[Any, ...]) -> Any:
    """What a call returns for an answer's values: None, the one value, or the tuple."""
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _request(
    svc: Service, addr: Address, ptype: str | int, args: tuple[Any, ...]
) -> tuple[int, tuple[Any, ...] | NotYet]:
    """Send a request: its session, and its answer's values if the callee answered inline, else NOT_YET."""
    node = svc.node
    dest = addr if type(addr) is int else node.resolve(addr)
    callee = node.services.get(dest)
    if callee is None:
        raise ServiceNotFound(f"call to invalid address {address(dest)}")
    pid, pack = svc.protocols.senders[ptype]
    session = svc.new_session()
    msg = (svc.handle, session, pid, args if pack is None else pack(*args))
    if svc.request.trace is not None:
        node.post(dest, marker(svc, "call", dest))
    running, holder = svc.running, svc.turn.holder  # svc.holds_turn(), inlined: the hot path
    holding = holder is running if running is not None else holder is current_task()
    if callee.turn.holder is None and holding and callee is not svc:
        callee.run_inline(msg)
        mailbox = svc.mailbox
        # Only an answer first in line can be taken: with many coroutines
        # calling, others' answers are usually ahead, and this saves asking.
        values = svc.take_answer(session) if mailbox and mailbox[0][1] == session else NOT_YET
        if values is not NOT_YET:
            svc.inline_calls += 1
        return session, values
    node.post(dest, msg)
    return session, NOT_YET


async def _answer(
    svc: Service, session: int, values: tuple[Any, ...] | NotYet, timeout: float | None
) -> tuple[Any, ...]:
    """The values answering `session`: those answered inline, or wait for them."""
    if values is not NOT_YET:
        # A loop of calls answered inline never suspends; now and then let
        # the rest of the node (timers, sockets, other services) run.
        if svc.inline_calls % INLINE_CALLS_PER_CHECKPOINT == 0:
            await svc.pause()
        return values
    if timeout is None:
        return await svc.wait_session(session)
    return await svc.wait_session_within(session, timeout)


async def call(addr: Address, ptype: str | int, *args: Any, timeout: float | None = None) -> Any:
    """Send a request and wait for its answer: None, the one value, or a tuple of several.

    Raises CallError when the callee is unknown or gone, raised, exited or
    ended without answering; trio.TooSlowError after `timeout` seconds (a late
    answer is then dropped).
    """
    try:
        svc = current.get()  # running(), inlined: a hot path
    except LookupError:
        raise _outside_any_service() from None
    meter = svc.node.call_meter
    if meter is not None and meter.due():
        return values_of(await _timed(svc, meter, addr, ptype, args, timeout))
    # `_values`, inlined: the hot paths skip its coroutine and _answer's.
    # (A try block costs nothing until it catches.)
    try:
        session, values = _request(svc, addr, ptype, args)
        if values is NOT_YET:
            values = await (svc.wait_session(session) if timeout is None else svc.wait_session_within(session, timeout))
        elif svc.inline_calls % INLINE_CALLS_PER_CHECKPOINT == 0:
            await svc.pause()
    except (CallError, trio.TooSlowError) as exc:
        _failed(svc, exc)
        raise
    # values_of, inlined
    return None if not values else values[0] if len(values) == 1 else values


async def rawcall(addr: Address, ptype: str | int, *args: Any, timeout: float | None = None) -> tuple[Any, ...]:
    """`call`, returning the answer's values as the tuple they came in, even of one or none.

    For code that forwards answers (the cluster agent packs them for the
    wire), where `call`'s None / value / tuple would lose how many there were.
    """
    svc = running()
    meter = svc.node.call_meter
    if meter is not None and meter.due():
        return await _timed(svc, meter, addr, ptype, args, timeout)
    return await _values(svc, addr, ptype, args, timeout)


async def _values(
    svc: Service, addr: Address, ptype: str | int, args: tuple[Any, ...], timeout: float | None
) -> tuple[Any, ...]:
    """Make a request and wait for its answer's values; a failure is told to the node's call meter."""
    try:
        session, values = _request(svc, addr, ptype, args)
        return await _answer(svc, session, values, timeout)
    except (CallError, trio.TooSlowError) as exc:
        _failed(svc, exc)
        raise


async def _timed(
    svc: Service, meter: CallMeter, addr: Address, ptype: str | int, args: tuple[Any, ...], timeout: float | None
) -> tuple[Any, ...]:
    """`_values`, timed for the node's call meter."""
    label = _label(svc, addr)
    started = perf_counter()
    values = await _values(svc, addr, ptype, args, timeout)
    meter.timed(label, perf_counter() - started)
    return values


def _label(svc: Service, addr: Address) -> str | None:
    """The label of the service at `addr`, or None if there is none."""
    node = svc.node
    try:
        callee = node.services.get(node.resolve(addr))
    except ServiceNotFound:
        return None
    return None if callee is None else callee.label


def _failed(svc: Service, exc: Exception) -> None:
    """Tell the node's call meter, if it has one, that a call failed with `exc`."""
    meter = svc.node.call_meter
    if meter is not None:
        if isinstance(exc, trio.TooSlowError):
            meter.failed("timeout")
        else:
            meter.failed("invalid_address" if isinstance(exc, ServiceNotFound) else "error")


def post_request(addr: Address, ptype: str | int, *args: Any) -> tuple[int, tuple[Any, ...] | None]:
    """Send a request now and wait for it later: its session, and its values if it was answered
    at once (by an idle callee with a plain handler), else None.

    For libraries that must send requests in order from a handler and collect
    the answers in coroutines (the cluster agent). A coroutine of this service
    must be waiting (`wait_answer`) before the service takes its next message,
    or the answer arrives as an unknown session: fork it right away.
    """
    svc = running()
    session, values = _request(svc, addr, ptype, args)
    return session, None if values is NOT_YET else values


async def wait_answer(session: int, timeout: float | None = None) -> tuple[Any, ...]:
    """The values answering `session`, a request sent by `post_request`."""
    return await _answer(running(), session, NOT_YET, timeout)


def queue_length(addr: Address) -> int:
    """How many messages wait in the mailbox of local service `addr` (0 if it is gone).

    For a service that feeds another and must not outrun it (the gate stops
    reading a client while its agent's queue is long).
    """
    node = running().node
    try:
        svc = node.services.get(node.resolve(addr))
    except ServiceNotFound:
        return 0  # a name nobody holds (now)
    return 0 if svc is None else len(svc.mailbox)


def mailbox_limit(n: int | None, overflow: Literal["reject", "log"] = "reject") -> None:
    """Bound this service's mailbox at `n` queued messages (None: unbounded, as by default).

    With "reject", a call past the bound fails at once with `Overloaded` (a
    CallError) and a send is dropped and counted (the debug STAT's
    ``dropped``); answers to this service's own calls always get in. With
    "log", nothing is refused: the queue's growth is logged as it always is.
    """
    if overflow not in ("reject", "log"):
        raise SkypyError(f"mailbox_limit overflow is 'reject' or 'log', not {overflow!r}")
    if n is not None and n < 0:
        raise SkypyError(f"mailbox_limit must be a count >= 0, not {n}")
    set_limit(running(), None if overflow == "log" else n)


# --- answering --------------------------------------------------------------


def dispatch(ptype: str | int, handler: Callable[..., Any]) -> Callable[..., Any] | None:
    """Handle messages of `ptype` with ``handler(session, source, *args)``; returns the old one."""
    svc = running()
    pid = svc.protocols.id_of(ptype)
    old = svc.handlers.get(pid)
    svc.handlers[pid] = Handler(handler)
    return old.fn if old is not None else None


def dispatch_commands(table: dict[Any, Callable[..., Any]], ptype: str | int = "lua") -> None:
    """The usual skynet dispatcher: ``table[cmd](*args)``, its return value answering calls."""
    svc = running()
    svc.handlers[svc.protocols.id_of(ptype)] = Handler(None, dict(table))


def ret(*values: Any) -> bool:
    """Answer the request being served; False for a plain send, an error if already answered."""
    try:
        svc = current.get()  # running(), inlined: every answer comes this way
    except LookupError:
        raise _outside_any_service() from None
    request = svc.request
    if request.answered:
        raise ResponseError(f"No session: {address(svc.handle)} already answered this request")
    request.answered = True
    if request.session == 0:
        return False
    svc.answer(request, True, values)
    return True


def ignoreret() -> None:
    """Declare that this handler does not answer, so ending without `ret` is not logged."""
    running().request.ignored = True


class Responder:
    """A one-shot answer to a request, for answering after the handler has moved on."""

    __slots__ = ("_service", "_request", "_used")

    def __init__(self, service: Service, request: ServedRequest) -> None:
        self._service = service
        self._request = request
        self._used = False

    def __call__(self, *values: Any) -> None:
        """Answer with `values`."""
        self._answer(True, values)

    def fail(self, reason: str | CallError = "failed") -> None:
        """Answer with an error: the caller's `call` raises CallError carrying `reason`.

        A CallError is raised in the caller as it is, without naming this
        service: for a service that answers for another one.
        """
        self._answer(False, reason)

    def _answer(self, ok: bool, payload: Any) -> None:
        if self._used or self._request not in self._service.owed:
            raise ResponseError("Can't response more than once")
        self._used = True
        self._service.answer(self._request, ok, payload)


def response() -> Responder:
    """Detach the request being served; the returned Responder answers it later, once."""
    svc = running()
    request = svc.request
    if request.answered:
        raise ResponseError(f"No session: {address(svc.handle)} already answered this request")
    if request.session == 0:
        raise ResponseError("response(): this message was sent, not called; nobody waits for an answer")
    request.answered = True
    return Responder(svc, svc.owe(request))  # the service's end fails it if never answered


def register_protocol(
    name: str, id: int, pack: Packer | None = None, unpack: Unpacker | None = None
) -> None:
    """Add a protocol to this service; `unpack` must return the tuple of handler arguments."""
    running().protocols.register(name, id, pack, unpack)


def now() -> float:
    """Seconds since the node started, on trio's clock."""
    return trio.current_time() - running().node.started_at


def error(*args: Any) -> None:
    """Log a line from this service (skynet's ``skynet.error``)."""
    svc = running()
    svc.node.log(svc.handle, " ".join(map(str, args)))


def getenv(key: str) -> Any:
    """A value from the config's ``[env]`` table or `setenv`, else the config's own key
    (``getenv("harbor")``, as skynet's env holds its config), or None."""
    node = running().node
    env = node.env
    return env[key] if key in env else node.config.value(key)


def setenv(key: str, value: Any) -> None:
    """Set an environment value once; changing it later is an error, as in skynet."""
    env = running().node.env
    if key in env:
        raise SkypyError(f"setenv: {key!r} is already set")
    env[key] = value
