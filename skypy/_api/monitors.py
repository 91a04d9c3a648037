"""Monitors in the service API: be told, as a new coroutine, when another service ends."""

from __future__ import annotations

from typing import Any, Callable

from .._core.monitors import Monitor
from .messages import Address, running

__all__ = ["demonitor", "monitor"]


def monitor(addr: Address, fn: Callable[[int, str], Any]) -> Monitor:
    """Run ``fn(handle, reason)`` as a new coroutine of this service when the service at `addr` ends.

    Exactly once, in turn order like a message; at once (behind what is
    queued) if it has ended already. `reason` is an `ExitReason` ("exit",
    "killed", "crash", "start failed", "node stopping" …). A name is resolved
    now: the monitor follows that service, not whichever holds the name later.
    Returns the token `demonitor` takes.
    """
    svc = running()
    return svc.node.monitors.add(svc, svc.node.resolve(addr), fn)


def demonitor(token: Monitor) -> bool:
    """Cancel a monitor; True if its callback had not been started yet and now never is."""
    return token.watcher.node.monitors.remove(token)
