"""Monitors: which services want to be told when another ends, and how each one ended.

A monitor is a session of the watching service that starts a coroutine when
it is answered, as a `timeout` callback does: when the watched service ends,
the node posts that session's answer, so the callback runs in the watcher's
turn order, behind what was already queued for it, like any message. Only
the watcher's own table is touched when it monitors, never the target's.

How a service ended is kept for a while after it has gone, so a monitor set
on a service that ended already fires at once with the true reason: a
supervisor that monitors a child right after starting it must not mistake a
quick crash for a normal exit.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable

from .message import PTYPE_RESPONSE
from .request import TimeoutCallback

if TYPE_CHECKING:
    from .node import Node
    from .service import Service

# How many ended services' reasons are remembered (handles are never reused,
# so an old reason never describes a new service). A monitor set on a
# service that ended before these reports UNKNOWN.
REMEMBERED_ENDINGS = 4096


class ExitReason(enum.StrEnum):
    """How a service ended, as its monitors are told; equal to the plain string."""

    EXIT = "exit"  # it called exit(), or ended after its stop hooks
    KILLED = "killed"  # kill() from another service or the console
    CRASH = "crash"  # a handler raised under crash_policy("exit"), or its loop failed
    START_FAILED = "start failed"  # its main raised
    NODE_STOPPING = "node stopping"  # the node shut down
    NODE_DOWN = "node down"  # a remote service's cluster link died
    UNKNOWN = "unknown"  # it ended too long ago for its reason to be remembered


MonitorFn = Callable[[int, str], Any]


class Monitor:
    """One watcher's monitor on one service; the token `demonitor` takes."""

    __slots__ = ("watcher", "target", "session", "reason")

    def __init__(self, watcher: Service, target: int, session: int) -> None:
        self.watcher = watcher
        self.target = target
        self.session = session
        # Set when the target ends and the callback is posted; None until then.
        self.reason: str | None = None

    def __repr__(self) -> str:
        return f"<Monitor of {self.target:#010x} by {self.watcher.handle:#010x}>"


class Monitors:
    """A node's monitors, by watched service and by watcher, and the reasons of recent endings."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # Dicts used as ordered sets: monitors fire in the order they were set.
        self.by_target: dict[int, dict[Monitor, None]] = {}
        self.by_watcher: dict[int, dict[Monitor, None]] = {}
        self.endings: OrderedDict[int, str] = OrderedDict()

    def add(self, watcher: Service, target: int, fn: MonitorFn) -> Monitor:
        """Call ``fn(target, reason)`` as a new coroutine of `watcher` when `target` ends (at once if it has)."""
        session = watcher.new_session()
        monitor = Monitor(watcher, target, session)
        watcher.sessions[session] = TimeoutCallback(lambda: fn(target, monitor.reason or ExitReason.UNKNOWN))
        if target in self.node.services:
            self.by_target.setdefault(target, {})[monitor] = None
            self.by_watcher.setdefault(watcher.handle, {})[monitor] = None
        else:
            self._fire(monitor, self.endings.get(target, ExitReason.UNKNOWN))
        return monitor

    def remove(self, monitor: Monitor) -> bool:
        """Cancel `monitor`; True if its callback had not been posted yet (it now never runs)."""
        watcher = monitor.watcher
        if monitor.reason is not None:
            # Posted already: the answer still arrives, and is dropped quietly.
            if watcher.sessions.pop(monitor.session, None) is not None:
                watcher.abandoned.add(monitor.session)
            return False
        watcher.sessions.pop(monitor.session, None)
        self._forget(monitor)
        return True

    def ended(self, svc: Service, reason: str) -> None:
        """`svc` has ended: post each of its monitors' callbacks, and drop the monitors it held."""
        self.endings[svc.handle] = reason
        if len(self.endings) > REMEMBERED_ENDINGS:
            self.endings.popitem(last=False)
        for monitor in list(self.by_watcher.get(svc.handle, ())):
            self._forget(monitor)
        for monitor in list(self.by_target.get(svc.handle, ())):
            self._forget(monitor)
            self._fire(monitor, reason)

    def _fire(self, monitor: Monitor, reason: str) -> None:
        monitor.reason = reason
        self.node.post(monitor.watcher.handle, (0, monitor.session, PTYPE_RESPONSE, ()))

    def _forget(self, monitor: Monitor) -> None:
        for table, key in ((self.by_target, monitor.target), (self.by_watcher, monitor.watcher.handle)):
            entries = table.get(key)
            if entries is not None:
                entries.pop(monitor, None)
                if not entries:
                    del table[key]
