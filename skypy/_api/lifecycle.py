"""Starting, finding, naming and ending services: the lifecycle part of the service API."""

from __future__ import annotations

from typing import Any, Callable, Literal, NoReturn

from .._core.message import PTYPE_ERROR, PTYPE_RESPONSE, address
from .._core.monitors import ExitReason
from .._core.request import ServedRequest
from .._core.service import Service
from ..errors import ServiceExit, ServiceNotFound, SkypyError
from .messages import Address, running, values_of
from .stopping import stop

__all__ = [
    "crash_policy", "exit", "kill", "localname", "name", "newservice", "on_exit", "queryservice", "register",
    "uniqueservice",
]



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
    new = node.spawn(label, service, args, ServedRequest(session, svc.handle))
    node.log(new.handle, f"LAUNCH {label}{''.join(' ' + str(a) for a in args)}")
    handle: int = values_of(await svc.wait_session(session))
    return handle


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
    handle: int = values_of(await svc.wait_session(session))
    return handle


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


def exit(reason: str = ExitReason.EXIT) -> NoReturn:
    """End this service: its callers get CallError, its name and sockets are freed. Never returns.

    Its monitors are told `reason`: "exit" is a normal end, anything else an
    abnormal one (a transient child is then restarted).
    """
    svc = running()
    svc.node.log(svc.handle, "KILL self" if reason == ExitReason.EXIT else f"KILL self ({reason})")
    svc.node.retire(svc, reason)
    raise ServiceExit


def crash_policy(policy: Literal["log", "exit"]) -> None:
    """What a handler's unhandled exception does to this service: "log" it and go on (skynet's way,
    the default), or "exit": end the service with reason "crash", so its supervisor restarts it fresh."""
    if policy not in ("log", "exit"):
        raise SkypyError(f"crash_policy is 'log' or 'exit', not {policy!r}")
    running().crash_exits = policy == "exit"


def on_exit(fn: Callable[[], object]) -> None:
    """Call ``fn()`` when this service ends, however it ends; the newest is called first.

    For libraries that hold resources for a service (skypy.socket closes its
    sockets here). `fn` runs in the exit fan-out and must not block; an
    exception from it is logged and the others still run.
    """
    running().exit_hooks.append(fn)


async def kill(addr: Address, *, graceful: bool = False, timeout: float | None = 5.0) -> None:
    """End the service at `addr` as if it had called `exit` (no-op if it is already gone).

    With `graceful`, its stop hooks (`on_stop`) run first, for at most
    `timeout` seconds (None: for ever), while it still serves calls. Its
    monitors are told "killed" either way.
    """
    svc = running()
    if graceful:
        await stop(addr, ExitReason.KILLED, timeout)
        return
    try:
        target = svc.node.service(addr)
    except ServiceNotFound:
        return
    if target is svc:
        exit()
    await svc.node.kill(target)
