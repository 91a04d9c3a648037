"""The service API: module-level functions that act for the service running them.

The current service is found through a context variable, so service code
reads like skynet's Lua: ``await skypy.call(addr, "lua", "get", key)``.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

import trio
from trio.lowlevel import current_task

from .errors import ResponseError, ServiceExit, ServiceNotFound, SkypyError
from .message import PTYPE_ERROR, PTYPE_RESPONSE, Message, address
from .protocol import Handler, Packer, Unpacker
from .service import NOT_YET, Request, Service, TimeoutCallback, current

Address = int | str
# How many calls answered without suspending run before one trio checkpoint.
INLINE_CALLS_PER_CHECKPOINT = 32
T = TypeVar("T")

__all__ = [
    "Responder", "call", "dispatch", "dispatch_commands", "error", "exit", "fork", "getenv",
    "ignoreret", "kill", "localname", "name", "newservice", "now", "queryservice", "redirect",
    "register", "register_protocol", "response", "ret", "self", "send", "setenv", "sleep",
    "timeout", "uniqueservice", "unlocked", "wait", "wakeup", "yield_",
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


def _payload(svc: Service, ptype: str | int, args: tuple[Any, ...]) -> tuple[int, Any]:
    pid, pack = svc.protocols.sender(ptype)
    return pid, args if pack is None else pack(*args)


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
    pid, pack = svc.protocols.sender(ptype)
    node.post(addr, (svc.handle, 0, pid, args if pack is None else pack(*args)))


def redirect(addr: Address, source: int, ptype: str | int, session: int, *args: Any) -> None:
    """Send a message that appears to come from `source` with `session` (skynet's redirect)."""
    svc = running()
    pid, payload = _payload(svc, ptype, args)
    svc.node.post(svc.node.resolve(addr), (source, session, pid, payload))


def _values(values: tuple[Any, ...]) -> Any:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


async def call(addr: Address, ptype: str | int, *args: Any, timeout: float | None = None) -> Any:
    """Send a request and wait for its answer: None, the one value, or a tuple of several.

    Raises CallError when the callee is unknown or gone, raised, exited or
    ended without answering; trio.TooSlowError after `timeout` seconds (a late
    answer is then dropped).
    """
    svc = running()
    node = svc.node
    dest = node.resolve(addr)
    if dest not in node.services:
        raise ServiceNotFound(f"call to invalid address {address(dest)}")
    pid, payload = _payload(svc, ptype, args)
    session = svc.new_session()
    msg = (svc.handle, session, pid, payload)
    callee = node.services[dest]
    if callee.turn.holder is None and svc.turn.holder is current_task() and callee is not svc:
        callee.dispatch_inline(msg)
        values = svc.take_answer(session)
        if values is not NOT_YET:
            svc.inline_calls += 1
            if svc.inline_calls % INLINE_CALLS_PER_CHECKPOINT == 0:
                # A loop of calls answered inline never suspends; let the
                # rest of the node (timers, sockets, other services) run.
                await trio.lowlevel.checkpoint()
            return _values(values)
    else:
        node.post(dest, msg)
    if timeout is None:
        return _values(await svc.wait_session(session))
    with trio.fail_after(timeout):
        return _values(await svc.wait_session(session))


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
    svc = running()
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

    def __init__(self, service: Service, request: Request) -> None:
        self._service = service
        self._request = request
        self._used = False

    def __call__(self, *values: Any) -> None:
        """Answer with `values`."""
        self._answer(True, values)

    def fail(self, reason: str = "failed") -> None:
        """Answer with an error: the caller's `call` raises CallError carrying `reason`."""
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
    return Responder(svc, request)


def register_protocol(
    name: str, id: int, pack: Packer | None = None, unpack: Unpacker | None = None
) -> None:
    """Add a protocol to this service; `unpack` must return the tuple of handler arguments."""
    running().protocols.register(name, id, pack, unpack)


# --- services -----------------------------------------------------------------


async def newservice(service: str | Callable[..., Any], *args: Any) -> int:
    """Start a service (a module name on the service path, or an async main) and return its handle.

    Returns once its main has returned; an error there fails this call.
    """
    svc = running()
    node = svc.node
    if isinstance(service, str):
        node.loader.find(service)
        label = service
    else:
        label = getattr(service, "__qualname__", repr(service))
    session = svc.new_session()
    new = node.spawn(label, service, args, Request(session, svc.handle))
    node.log(new.handle, f"LAUNCH {label}{''.join(' ' + str(a) for a in args)}")
    return _values(await svc.wait_session(session))


async def uniqueservice(service: str, *args: Any) -> int:
    """The one service of this name on the node, started on first use."""
    svc = running()
    node = svc.node
    if service in node.unique:
        return node.unique[service]
    if service in node.unique_starting:
        return await queryservice(service)
    node.unique_starting.add(service)
    try:
        handle = await newservice(service, *args)
    except BaseException as exc:
        _answer_unique_waiters(svc, service, False, f"uniqueservice {service!r} failed to start: {exc}")
        raise
    finally:
        node.unique_starting.discard(service)
    node.unique[service] = handle
    _answer_unique_waiters(svc, service, True, (handle,))
    return handle


def _answer_unique_waiters(svc: Service, service: str, ok: bool, payload: Any) -> None:
    ptype = PTYPE_RESPONSE if ok else PTYPE_ERROR
    for handle, session in svc.node.unique_waiters.pop(service, []):
        svc.node.post(handle, (svc.handle, session, ptype, payload))


async def queryservice(service: str) -> int:
    """The handle of unique service `service`, waiting until it has started."""
    svc = running()
    node = svc.node
    if service in node.unique:
        return node.unique[service]
    session = svc.new_session()
    node.unique_waiters.setdefault(service, []).append((svc.handle, session))
    return _values(await svc.wait_session(session))


def register(name: str) -> None:
    """Give this service a local name (``.name``)."""
    svc = running()
    _set_name(svc, name, svc.handle)


def name(name: str, addr: Address) -> None:
    """Give the service at `addr` a local name (``.name``)."""
    svc = running()
    _set_name(svc, name, svc.node.resolve(addr))


def _set_name(svc: Service, name: str, handle: int) -> None:
    names = svc.node.names
    if not name.startswith(".") or len(name) < 2:
        raise SkypyError(f"local names start with '.': {name!r}")
    holder = names.get(name)
    if holder is not None and holder != handle and holder in svc.node.services:
        raise SkypyError(f"name {name} is already used by {address(holder)}")
    names[name] = handle


def localname(name: str) -> int | None:
    """The handle named `name` on this node, or None."""
    return running().node.names.get(name)


def exit() -> None:
    """End this service: its callers get CallError, its name and sockets are freed. Never returns."""
    svc = running()
    svc.node.log(svc.handle, "KILL self")
    svc.node.retire(svc, "exit")
    raise ServiceExit


async def kill(addr: Address) -> None:
    """End the service at `addr` as if it had called `exit` (no-op if it is already gone)."""
    svc = running()
    try:
        target = svc.node.service(addr)
    except ServiceNotFound:
        return
    if target is svc:
        exit()
    await svc.node.kill(target)


# --- coroutines and time ----------------------------------------------------------


def fork(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` as a new coroutine of this service once the running one suspends."""
    svc = running()
    svc.forks.append((Request(0, 0), fn, args, False, "fork"))
    svc.turn.kick()


async def sleep(seconds: float, token: object = None) -> str | None:
    """Suspend for `seconds`; returns "BREAK" if `wakeup(token)` ends it early."""
    svc = running()
    session = svc.new_session()
    _schedule(svc, seconds, session)
    result = await svc.suspend_until_woken(current_task() if token is None else token, session)
    return None if result == () else result


async def yield_() -> None:
    """Let every message already queued for this service run first (skynet's yield)."""
    await sleep(0)


def timeout(seconds: float, fn: Callable[[], Any]) -> None:
    """Run ``fn()`` as a new coroutine of this service after `seconds`."""
    svc = running()
    session = svc.new_session()
    svc.sessions[session] = TimeoutCallback(fn)
    _schedule(svc, seconds, session)


def _schedule(svc: Service, seconds: float, session: int) -> None:
    # A zero delay is a message queued now, behind those already waiting,
    # not a timer that might fire after later messages.
    if seconds > 0:
        svc.node.timers.add(seconds, svc.handle, session)
    else:
        svc.node.post(svc.handle, (0, session, PTYPE_RESPONSE, ()))


async def wait(token: object = None) -> None:
    """Suspend until `wakeup(token)`; the token defaults to the current trio task."""
    svc = running()
    await svc.suspend_until_woken(current_task() if token is None else token)


def wakeup(token: object) -> bool:
    """Resume the coroutine waiting on `token` when this one next suspends."""
    return running().wakeup(token)


async def unlocked(awaitable: Awaitable[T]) -> T:
    """Await `awaitable` while letting this service's other coroutines and messages run."""
    svc = running()
    turn = svc.turn
    if turn.holder is not current_task():
        return await awaitable
    request = svc.request
    turn.release()
    try:
        return await awaitable
    finally:
        with trio.CancelScope(shield=True):
            await turn.acquire()
        svc.request = request


def now() -> float:
    """Seconds since the node started, on trio's clock."""
    return trio.current_time() - running().node.started_at


def error(*args: Any) -> None:
    """Log a line from this service (skynet's ``skynet.error``)."""
    svc = running()
    svc.node.log(svc.handle, " ".join(map(str, args)))


def getenv(key: str) -> Any:
    """A value from the config's ``[env]`` table or `setenv`, or None."""
    return running().node.env.get(key)


def setenv(key: str, value: Any) -> None:
    """Set an environment value once; changing it later is an error, as in skynet."""
    env = running().node.env
    if key in env:
        raise SkypyError(f"setenv: {key!r} is already set")
    env[key] = value
