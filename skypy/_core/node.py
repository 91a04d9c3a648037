"""The node: handle and name tables, routing, service lifecycle, timers and the log.

It knows nothing of sockets, consoles or the debug protocol: those are
services and libraries built on the service API, attached through the hook
fields below (`default_handlers`, `log_hooks`, `crash_hooks`, `retire_hooks`,
`call_meter`, `extensions`) and `Service`'s own (`exit_hooks`, `message_hook`,
`libraries`).
"""

from __future__ import annotations

import copy
import logging
import sys
from collections import deque
from contextlib import contextmanager
from time import perf_counter
from typing import Any, Callable, Final, Iterator, Protocol, TypeVar

import trio

from ..errors import ServiceExit, ServiceNotFound, SkypyError
from .config import Config
from .deadletters import DeadLetters
from .loader import ServiceLoader
from .message import (
    HARBOR_SHIFT,
    LOCAL_MASK,
    PTYPE_ERROR,
    PTYPE_RESPONSE,
    PTYPE_TEXT,
    RawMessage,
    address,
    handle as parse_address,
)
from .meter import Meter
from .monitors import ExitReason, Monitors
from .protocol import Handler, ProtocolTable
from .request import ServedRequest
from .service import BATCH, PASS_BUDGET, Fork, Service
from .timers import Timers
from .turn import Stand

# How many service runs the end of one `delivering` block makes in its task
# before it leaves the rest to their loop tasks: a chain of sends must not
# keep one task step (and so the whole node) for long.
INLINE_RUNS = 512
QUEUED: Final = Stand.QUEUED

T = TypeVar("T")

LogHook = Callable[[int, str], None]
# crash_hook(service, what, exception): what failed ("handler", "start", …) and why.
CrashHook = Callable[[Service, str, BaseException], None]


class CallMeter(Protocol):
    """What watches the calls services make (the metrics), through `Node.call_meter`."""

    def due(self) -> bool:
        """Whether to time the call being made: asked once a call, so it must be cheap."""

    def timed(self, label: str | None, seconds: float) -> None:
        """A timed call to a service of `label` (None: no such service) took `seconds`."""

    def failed(self, reason: str) -> None:
        """A call failed: "invalid_address", "error" (the callee raised, exited, did not answer) or "timeout"."""


class Node:
    """One skypy node: every service of one process, one trio run."""

    # What `spawn` makes: a subclass may make its own (CopyingNode).
    service_class: type[Service] = Service

    def __init__(self, config: Config) -> None:
        self.config = config
        self.harbor = config.harbor
        self.env: dict[str, Any] = dict(config.env)
        self.protocols = ProtocolTable()
        self.services: dict[int, Service] = {}
        self.names: dict[str, int] = {}
        self.loader = ServiceLoader(config.service_path)
        self.timers = Timers(self._fire_timer)
        self.log_hooks: list[LogHook] = []
        # Told of every exception a service did not handle, after it is
        # logged, so tools (skypy.testing) see crashes without parsing the log.
        self.crash_hooks: list[CrashHook] = []
        # Told of each service as it is retired, before its names are freed,
        # so tools that total per-service figures (the metrics) keep its share.
        self.retire_hooks: list[Callable[[Service], None]] = []
        # Told of the calls services make, when set (the metrics); None, the
        # usual case, costs the call path one test.
        self.call_meter: CallMeter | None = None
        # State of the libraries layered on the node (the socket server, the
        # cluster), by name, so the node itself need not know them; made on
        # first use through `extension`.
        self.extensions: dict[str, Any] = {}
        # Handlers every service starts with, by protocol number: the node's
        # assembly installs the debug protocol here, as skynet's service
        # library installs it in each service; the core never looks inside.
        self.default_handlers: dict[int, Handler] = {}
        self.meter = Meter(self)
        self.monitors = Monitors(self)
        self.dead_letters = DeadLetters(trio.current_time)
        self.started_at = 0.0
        self.nursery: trio.Nursery | None = None
        # uniqueservice name -> its handle; names being started; and the
        # (handle, session) pairs of callers waiting for one to start.
        self.unique: dict[str, int] = {}
        self.unique_starting: set[str] = set()
        self.unique_waiters: dict[str, list[tuple[int, int]]] = {}
        self._last_id = 0
        # Within `delivering`: the idle services that messages posted
        # meanwhile are for, to run in that task instead of waking their loop
        # tasks. None the rest of the time.
        self._runnable: deque[Service] | None = None

    def extension(self, name: str, make: Callable[..., T], *args: Any) -> T:
        """The state a library keeps on this node under `name`, made by ``make(*args)`` on first use."""
        state: T | None = self.extensions.get(name)
        if state is None:
            state = self.extensions[name] = make(*args)
        return state

    # --- addressing -------------------------------------------------------

    def new_handle(self) -> int:
        """The next handle; local ids are never reused, so an old address never hits a new service."""
        self._last_id += 1
        if self._last_id > LOCAL_MASK:
            raise SkypyError("handle space exhausted: 2^24 services were started on this node")
        return self.harbor << HARBOR_SHIFT | self._last_id

    def resolve(self, addr: int | str) -> int:
        """A handle for `addr` (a handle, ``":0000000a"`` or a ``.name``); ServiceNotFound if the name is unknown."""
        if type(addr) is int:
            return addr
        if isinstance(addr, str) and addr.startswith("."):
            handle = self.names.get(addr)
            if handle is None:
                raise ServiceNotFound(f"no service is named {addr}")
            return handle
        if isinstance(addr, str) and addr.startswith(":"):
            try:
                return parse_address(addr)
            except ValueError:
                pass
        raise ServiceNotFound(f"{addr!r} is not an address (a handle, a ':0000000a' string or a .name)")

    def post(self, dest: int, msg: RawMessage) -> None:
        """Put `msg` in `dest`'s mailbox; a message to a dead address is dropped or refused."""
        svc = self.services.get(dest)
        if svc is None:
            self._undeliverable(dest, msg)
            return
        mailbox = svc.mailbox
        mailbox.append(msg)
        if len(mailbox) >= svc.overload_at:
            self.log(dest, f"May overload, message queue length = {len(mailbox)}", logging.WARNING)
            svc.overload_at *= 2
        if svc.turn.holder is None:
            runnable = self._runnable
            if runnable is None:
                svc.turn.kick()
            else:
                svc.turn.holder = QUEUED
                runnable.append(svc)

    @contextmanager
    def delivering(self) -> Iterator[None]:
        """Within this block, posting to an idle service does not wake its loop task: its turn
        is held for the block's task (Stand.QUEUED), which at the end runs each such service
        once, in turn, until it hands the turn on; then, the same way, the idle services their
        handlers sent to, up to INLINE_RUNS runs. Past that, their loop tasks take over.

        For tasks outside every service (the socket server's poller) that
        would otherwise wake a loop task for each hop. The poller reads a
        batch of sockets in one block: a service gets all its DATA of the
        batch in one run, and a gate's packets go on to the connections'
        agents, which write the answers, all in the poller's step. Each
        service is run as its loop would run it, in skynet's order, after
        the handler that sent to it has returned; this is one of the orders
        trio's scheduler could have picked for the loop tasks, never a
        message overtaking another.
        """
        runnable = self._runnable = deque()
        try:
            yield
            # Each run is charged from where the last ended: one clock
            # reading a run.
            clock = perf_counter()
            for _ in range(INLINE_RUNS):
                if not runnable:
                    break
                svc = runnable.popleft()
                if svc.turn.holder is QUEUED:  # (not CLOSED since)
                    # As much as its loop would take in one step: a gate
                    # with the DATA of a whole batch takes it all here.
                    clock = svc.run_inline(None, BATCH, clock)
        finally:
            self._runnable = None
            for svc in runnable:
                if svc.turn.holder is QUEUED:
                    svc.turn.give_loop()

    def _undeliverable(self, dest: int, msg: RawMessage) -> None:
        source, session, ptype, _ = msg
        if ptype == PTYPE_RESPONSE or ptype == PTYPE_ERROR:
            return  # the caller is gone; nobody waits for this answer
        dropped = self.dead_letters.dropped(source, dest)
        if session:
            self.post(source, (dest, session, PTYPE_ERROR, "service is gone"))
        elif dropped == 1:
            self.log(source, f"drop message to dead address {address(dest)}", logging.WARNING)
        elif dropped:
            self.log(source, f"drop message to dead address {address(dest)} ({dropped} since the last line)", logging.WARNING)

    def _fire_timer(self, handle: int, session: int) -> None:
        self.post(handle, (0, session, PTYPE_RESPONSE, ()))

    # --- the log ----------------------------------------------------------

    def log(self, source: int, text: str, level: int = logging.INFO) -> None:
        """Log `text` from `source` at `level` (Python logging's numbers) through the ``.logger``
        service (stderr until it runs).

        The logger gets ``text, level, label``: the label of `source` is
        looked up now, as a crashing service is gone by the time its last
        lines are written.
        """
        for hook in self.log_hooks:
            hook(source, text)
        logger = self.services.get(self.names.get(".logger", -1))
        if logger is None:
            print(f"[{address(source)}] {text}", file=sys.stderr, flush=True)
        else:
            svc = self.services.get(source)
            label = "node" if svc is None else svc.label
            self.post(logger.handle, (source, 0, PTYPE_TEXT, (text, level, label)))

    # --- lifecycle --------------------------------------------------------

    def spawn(
        self, label: str, start: str | Callable[..., Any], args: tuple[Any, ...], request: ServedRequest
    ) -> Service:
        """Create a service whose first coroutine runs ``start(*args)`` (a module name: its main) and answers `request`."""
        assert self.nursery is not None, "the node is not running"
        svc = self.service_class(self, self.new_handle(), label)
        svc.args = args
        self.services[svc.handle] = svc
        svc.owed.add(request)
        svc.forks.append(Fork(request, self._boot, (svc, start, args), True, "start"))
        self.nursery.start_soon(self.guard, svc, name=f"skypy{address(svc.handle)} {label}")
        return svc

    async def _boot(self, svc: Service, start: str | Callable[..., Any], args: tuple[Any, ...]) -> int:
        """A service's first coroutine: its main; when main returns, newservice does too."""
        try:
            main = self.loader.load(start) if isinstance(start, str) else start
            svc.namespace = getattr(main, "__globals__", None)
            result = main(*args)
            if hasattr(result, "__await__"):
                await result
        except Exception as exc:
            request = svc.request
            svc.failed(request, exc, "start")
            self.retire(svc, ExitReason.START_FAILED)
            raise ServiceExit from None
        return svc.handle

    async def guard(self, svc: Service, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run a service's loop; a bug that escapes it retires the service, never the node."""
        try:
            await svc.run(task_status)
        except Exception as exc:
            svc.failed(svc.request, exc, "service loop")
            self.retire(svc, ExitReason.CRASH)
        finally:
            # A loop ends once its service is retired; one that ends otherwise was
            # cancelled with the node's nursery: the node is stopping.
            self.retire(svc, ExitReason.NODE_STOPPING)

    def retire(self, svc: Service, why: str) -> None:
        """The exit fan-out: fail what the service owes, refuse its queue, free its name, tell its monitors.

        `why` is how it ended (an `ExitReason`), as its monitors are told.
        """
        if svc.dead:
            return
        svc.dead = True
        for retire_hook in self.retire_hooks:
            retire_hook(svc)
        svc.turn.close()
        self.services.pop(svc.handle, None)
        for name in [n for n, h in self.names.items() if h == svc.handle]:
            del self.names[name]
        for name in [n for n, h in self.unique.items() if h == svc.handle]:
            del self.unique[name]
        reason = f"service {address(svc.handle)} exited ({why})"
        svc.release_requests()  # requests held by a reload are refused with the rest
        owed = list(svc.owed)
        serving = svc.request
        if serving.session and not serving.answered and serving not in svc.owed:
            owed.append(serving)  # a plain handler's, ending the service (Service.invoke)
        for request in owed:
            request.answered = True
            svc.answer(request, False, reason)
        for source, session, ptype, _ in svc.mailbox:
            if session and ptype != PTYPE_RESPONSE and ptype != PTYPE_ERROR:
                self.post(source, (svc.handle, session, PTYPE_ERROR, reason))
        svc.mailbox.clear()
        for hook in reversed(svc.exit_hooks):
            try:
                hook()
            except Exception as exc:
                svc.failed(ServedRequest(0, 0), exc, "exit hook")
        svc.close_fibers()
        self.monitors.ended(svc, why)
        svc.cancel_scope.cancel()

    async def kill(self, svc: Service) -> None:
        """Retire `svc` from outside and wait until its tasks have ended."""
        self.log(svc.handle, "KILL")
        self.retire(svc, ExitReason.KILLED)
        await svc.finished.wait()

    def service(self, addr: int | str) -> Service:
        """The live service at `addr`, or ServiceNotFound naming it."""
        handle = self.resolve(addr)
        svc = self.services.get(handle)
        if svc is None:
            raise ServiceNotFound(f"no service at {address(handle)}")
        return svc

    def close(self) -> None:
        """Retire every service, newest first, and stop the node's tasks."""
        for svc in sorted(self.services.values(), key=lambda s: -s.handle):
            self.retire(svc, ExitReason.NODE_STOPPING)
        if self.nursery is not None:
            self.nursery.cancel_scope.cancel()


class _CopyingService(Service):
    """A service of a `CopyingNode`: a call run inline (`Service.run_inline`, the one way
    into a mailbox besides `Node.post`) gets its own copy too."""

    def run_inline(self, msg: RawMessage | None, budget: int = PASS_BUDGET, started: float | None = None) -> float:
        return super().run_inline(None if msg is None else _copied(msg), budget, started)


class CopyingNode(Node):
    """A node for the `copy_messages` debug option: each receiver gets its own copy of a payload.

    Code that shares a payload between services (the sender mutating what it
    sent, the receiver mutating what it got) then behaves as it would across
    nodes, where payloads are serialised, so tests can catch it. A subclass
    rather than a flag tested in `post`, so the send path of a normal node
    pays nothing for it.
    """

    service_class = _CopyingService

    def post(self, dest: int, msg: RawMessage) -> None:
        super().post(dest, _copied(msg))


def _copied(msg: RawMessage) -> RawMessage:
    source, session, ptype, payload = msg
    return (source, session, ptype, copy.deepcopy(payload))


def new_node(config: Config) -> Node:
    """The node `config` asks for: a `CopyingNode` when it sets `copy_messages`."""
    return CopyingNode(config) if config.copy_messages else Node(config)
