"""Reloading a service in place: new module code at the same address, with its state carried over.

skynet's answer to hot update is a new service, or code injected by hand;
here the service itself runs its file again. The reload is a coroutine of
the reloaded service, queued as a fork, so it runs in that service's turn
like any of its coroutines: ahead of the messages still queued, which then
wait (`Service.hold_requests`) until the new code is in place and are served
by it. Answers still pass meanwhile, so the new code may call others while
it starts and the old code's suspended coroutines finish, in the old code,
whenever their answers come. (A message asking the service to reload itself
would need a handler in every service, one its code could replace, as it
may replace the debug protocol's; a fork needs nothing of the service.)

The new module runs in a fresh namespace. If it defines ``reload(old)``,
that is called with the old namespace to carry state over (and set up its
handlers); otherwise its ``main`` runs again with the service's launch
arguments. Handlers the new code does not set stay as they were, which keeps
those of libraries (a socket pool's, the debug protocol). If anything fails
(the file does not compile or import, ``reload`` or ``main`` raises), the
handlers, protocols and namespace are put back and names the new code took
are dropped, so the old code serves on, and the reloader gets a
`ReloadError` saying why. Reloads of one service queue one behind another.
"""

from __future__ import annotations

import traceback
import weakref
from pathlib import Path
from typing import Any

from .._core.message import address
from .._core.protocol import ProtocolTable
from .._core.request import ServedRequest
from .._core.service import Fork, Service
from ..errors import SkypyError
from .critical import CriticalSection
from .messages import Address, running

__all__ = ["ReloadError", "reload"]

# Service modules run under this name prefix (the loader's); a service started
# from a function has no file of its own to reload.
_MODULE_PREFIX = "skypy.service."


class ReloadError(SkypyError):
    """A reload did not happen: the service was not started from a file, or its new code failed.

    The service is unchanged and its old code keeps serving.
    """


async def reload(addr: Address) -> None:
    """Run the service at `addr` again from its file's current source, keeping its address,
    names, sockets and mailbox; returns once the new code serves. Raises `ReloadError`
    (the old code serving on) if the new code fails, ServiceNotFound if there is no such service."""
    svc = running()
    target = svc.node.service(addr)
    namespace = target.namespace or {}
    name = namespace.get("__name__", "")
    if not name.startswith(_MODULE_PREFIX) or "__file__" not in namespace:
        raise ReloadError(f"{address(target.handle)} ({target.label}) was not started from a service file")
    session = svc.new_session()
    request = ServedRequest(session, svc.handle)
    target.owed.add(request)
    target.forks.append(Fork(request, _reload_here, (target, request), False, "reload"))
    target.turn.kick()
    try:
        await svc.wait_session(session)
    except SkypyError as exc:  # the CallError carrying the reason
        raise ReloadError(str(exc).removeprefix(f"call to {address(target.handle)} failed: ")) from None


async def _reload_here(svc: Service, request: ServedRequest) -> None:
    """The reload itself, as a coroutine of the reloaded service `svc`; answers `request`."""
    lock = _reloading.get(svc)
    if lock is None:
        lock = _reloading[svc] = CriticalSection()
    # Reloads of one service run one after another: a second, started while
    # the first waits for something, would find the first's half-set state.
    async with lock:
        ok, payload = await _run_new_code(svc)
    _answer(svc, request, ok, payload)


async def _run_new_code(svc: Service) -> tuple[bool, Any]:
    """Run `svc`'s file again, holding requests meanwhile; (True, ()) or (False, why), with the state put back."""
    node = svc.node
    old = svc.namespace
    assert old is not None
    path = Path(old["__file__"])
    name = old["__name__"].removeprefix(_MODULE_PREFIX)
    handlers, protocols, info_func = dict(svc.handlers), svc.protocols, svc.info_func
    names = {n for n, handle in node.names.items() if handle == svc.handle}
    svc.hold_requests()
    try:
        code = node.loader.compile(path)
        new = node.loader.run(name, path, code)
        carry_over = new.get("reload")
        if callable(carry_over):
            result: Any = carry_over(old)
        else:
            main = new.get("main")
            if not callable(main):
                raise SkypyError(f"{path} defines neither reload(old) nor main(*args)")
            # main registers its protocols again, as at start.
            svc.protocols = ProtocolTable(node.protocols)
            result = main(*svc.args)
        if hasattr(result, "__await__"):
            await result
    except Exception as exc:
        svc.handlers, svc.protocols, svc.info_func = handlers, protocols, info_func
        for n in [n for n, handle in node.names.items() if handle == svc.handle and n not in names]:
            del node.names[n]
        node.log(
            svc.handle,
            f"RELOAD {name} failed, the old code serves on:\n" + "".join(traceback.format_exception(exc)).rstrip(),
        )
        return False, f"reload of {address(svc.handle)} ({name}) failed: {type(exc).__name__}: {exc}"
    finally:
        svc.release_requests()
    svc.namespace = new
    node.loader.remember(path, code)
    node.log(svc.handle, f"RELOAD {name}")
    return True, ()


# Each service's reloads, one at a time.
_reloading: weakref.WeakKeyDictionary[Service, CriticalSection] = weakref.WeakKeyDictionary()


def _answer(svc: Service, request: ServedRequest, ok: bool, payload: Any) -> None:
    if not request.answered:
        request.answered = True
        svc.answer(request, ok, payload)
