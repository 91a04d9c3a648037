"""The watchdog: a thread that notices a handler holding the node too long, and interrupts it.

A node runs on one trio thread, so a handler stuck in ``while True: pass``
freezes every service, the console included: nothing inside the node can
notice or stop it. A monitor thread reads the node's meter; a task step
running longer than `endless` seconds is reported as skynet reports it,
``A message from [ :src ] to [ :dst ] maybe in an endless loop``, and the
service is flagged for `stat`. The handler is interrupted — `Interrupted`
raised inside it, so its caller gets CallError and the service carries on —
when the operator sends the configured signal (``kill -USR1 PID``), when the
console's ``signal ADDR`` armed it, or after `interrupt` seconds if set.

Signal handlers run only in the main thread, so interrupts need the node to
run there (as `skypy run` and pytest do); elsewhere the watchdog only reports.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from time import perf_counter
from types import FrameType
from typing import Any, Callable

import trio

from ..errors import SkypyError
from .current import current
from .message import address
from .node import Node
from .service import Service

DEFAULTS: dict[str, Any] = {"endless": 5.0, "interrupt": 0, "signal": "SIGUSR1"}

# Frames of these files are skypy's and trio's own: raising inside them could
# leave the node's state half-changed, so an interrupt lands only in user code.
_INTERNAL = (str(Path(__file__).parent.parent), str(Path(trio.__file__).parent))


class Interrupted(SkypyError):
    """Raised inside a handler that held the node too long, by the watchdog or the operator's signal."""

    # Tracebacks name it where users import it from, not the private module.
    __module__ = "skypy"


# Where skypy calls into service code and catches what it raises: the only
# frames an interrupt may unwind to.
_ENTRY_CODES = frozenset(
    {Service.invoke.__code__, Service.send.__code__, Node._boot.__code__}
)


def inside_handler(frame: FrameType | None) -> bool:
    """True if `frame` is user code that a skypy entry point called, with no skypy or trio frame between."""
    if frame is None or frame.f_code.co_filename.startswith(_INTERNAL):
        return False
    outer = frame.f_back
    while outer is not None:
        if outer.f_code.co_filename.startswith(_INTERNAL):
            return outer.f_code in _ENTRY_CODES
        outer = outer.f_back
    return False


class Watchdog:
    """Watches one node's meter from a thread of its own."""

    def __init__(self, node: Node, endless: float, interrupt: float, signum: int | None) -> None:
        self.node = node
        self.endless = endless
        self.interrupt = interrupt
        self.signum = signum
        # Handles whose next stuck handler is interrupted at once (console `signal`).
        self.armed: set[int] = set()
        # The step reported stuck, its service, and the step an interrupt
        # was delivered to; `pending` asks the monitor to signal again, when
        # the last signal found the thread outside the handler's own code.
        self.reported = 0
        self.stuck: Service | None = None
        self.delivered = 0
        self.pending = False
        # The report's log line until the trio thread has logged it.
        self.unlogged: tuple[int, str] | None = None
        # Set by start() when this node runs in the main thread, where signals land.
        self.can_interrupt = False
        limits = [t for t in (endless, interrupt) if t]
        self.poll = min(max(min(limits) / 10, 0.01), 0.5)
        self._token = trio.lowlevel.current_trio_token()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="skypy watchdog", daemon=True)

    def arm(self, handle: int) -> None:
        """Interrupt the service's next handler reported stuck, without waiting for a signal."""
        self.armed.add(handle)

    # --- the monitor thread ------------------------------------------------

    def _run(self) -> None:
        meter = self.node.meter
        while not self._stop.wait(0.02 if self.pending else self.poll):
            steps = meter.steps
            if steps != self.reported:
                self.pending = False  # it was for a step that has ended
            task, started = meter.task, meter.started
            if task is None or meter.steps != steps:
                continue  # between steps, or one ended while we read
            held = perf_counter() - started
            if steps != self.reported:
                if held < self.endless:
                    continue
                svc = task.context.get(current, None)
                self.reported = steps
                self.stuck = svc if svc is not None and svc.node is self.node else None
                if self.stuck is not None:
                    self._report(self.stuck, held)
            if self.stuck is not None and self.delivered != steps and self._interrupt_due(self.stuck, held):
                main = threading.main_thread().ident
                # The main thread runs (it started us), and can_interrupt is only set with a signal.
                assert main is not None and self.signum is not None
                signal.pthread_kill(main, self.signum)

    def _interrupt_due(self, svc: Service, held: float) -> bool:
        if not self.can_interrupt:
            return False
        return self.pending or svc.handle in self.armed or bool(self.interrupt and held >= self.interrupt)

    def _report(self, svc: Service, held: float) -> None:
        svc.endless = True
        text = f"A message from [ {address(svc.request.source)} ] to [ {address(svc.handle)} ] maybe in an endless loop"
        # The logger cannot run until the node does, so the operator hears it
        # now on stderr, and the log gets the line when the node runs again
        # (or when an interrupt lands: set before the alert that prompts one).
        self.unlogged = (svc.handle, text)
        hint = ""
        if self.can_interrupt and self.signum is not None:
            hint = f"; kill -{signal.Signals(self.signum).name[3:]} {os.getpid()} interrupts it"
        sys.stderr.write(f"skypy watchdog: [{address(svc.handle)}] {text} (held {held:.1f} s{hint})\n")
        sys.stderr.flush()
        self._log_later(self.flush_report)

    def flush_report(self) -> None:
        """Log the stuck report, once, from the trio thread."""
        if self.unlogged is not None:
            self.node.log(*self.unlogged)
            self.unlogged = None

    def _log_later(self, fn: Callable[..., object], *args: Any) -> None:
        try:
            self._token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            pass

    # --- starting and stopping -----------------------------------------------

    def start(self) -> None:
        """Start the monitor thread; in the main thread, install the interrupting signal's handler too."""
        if self.signum is not None and threading.current_thread() is threading.main_thread():
            if self.signum not in _installed:
                _installed[self.signum] = signal.signal(self.signum, _on_signal)
            self.can_interrupt = True
        _watchdogs.append(self)
        self._thread.start()

    def stop(self) -> None:
        """Stop the monitor thread; put the signal's old handler back once no watchdog needs ours."""
        self._stop.set()
        self._thread.join()
        _watchdogs.remove(self)
        if self.can_interrupt and self.signum is not None:
            if not any(w.signum == self.signum and w.can_interrupt for w in _watchdogs):
                signal.signal(self.signum, _installed.pop(self.signum))


# Every running watchdog of this process, and the signal handlers they replaced.
_watchdogs: list[Watchdog] = []
_installed: dict[int, Any] = {}


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Raise Interrupted in the handler that holds the node, if one was reported stuck."""
    for dog in _watchdogs:
        meter = dog.node.meter
        svc = dog.stuck
        if not dog.can_interrupt or svc is None or meter.task is None or meter.steps != dog.reported:
            continue
        if not inside_handler(frame):
            dog.pending = True  # try again when the thread is back in the handler's own code
            return
        dog.pending = False
        dog.delivered = meter.steps
        dog.armed.discard(svc.handle)
        held = perf_counter() - meter.started
        dog.flush_report()  # the report first, then the handler's traceback
        raise Interrupted(f"{address(svc.handle)}: handler interrupted after {held:.1f} s holding the node")
    if _watchdogs:
        dog = _watchdogs[0]
        dog._log_later(dog.node.log, 0, f"{signal.Signals(signum).name}: no handler is holding the node; nothing to interrupt")


async def watch(node: Node, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Meter the node and run its watchdog for as long as the node runs (a task of its nursery)."""
    settings = {**DEFAULTS, **node.config.watchdog}
    signum = getattr(signal, settings["signal"]) if settings["signal"] else None
    dog = Watchdog(node, float(settings["endless"]), float(settings["interrupt"]), signum)
    node.extensions["watchdog"] = dog
    trio.lowlevel.add_instrument(node.meter)
    dog.start()
    try:
        task_status.started()
        await trio.sleep_forever()
    finally:
        dog.stop()
        trio.lowlevel.remove_instrument(node.meter)
