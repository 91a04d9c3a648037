"""One service: its mailbox, its loop, its coroutines, sessions and requests.

Messages are taken in arrival order by whichever task holds the service's
turn (turn.py): the loop task, a coroutine's own task that just suspended,
or a sender running an idle service inline. A handler that is a plain
function runs right there, with no task switch; one that returns a coroutine
becomes a Fiber (fiber.py), which the loop task resumes step by step.
"""

from __future__ import annotations

import contextvars
import enum
import logging
import traceback
from collections import deque
from time import perf_counter
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Final, NamedTuple

import outcome
import trio
from trio.lowlevel import Task, cancel_shielded_checkpoint, checkpoint, current_task, wait_task_rescheduled

from ..errors import CallError, ServiceExit, SkypyError
from .current import current
from .fiber import (
    CARRY,
    ENDED,
    PAUSE,
    SUSPEND,
    Fiber,
    Resumption,
    ask_for_task,
    forward_trap,
    pause,
    raised,
    suspend,
)
from .holding import HoldingMailbox
from .message import PTYPE_ERROR, PTYPE_RESPONSE, RawMessage, address
from .monitors import ExitReason
from .protocol import Handler, ProtocolTable
from .request import ServedRequest, TimeoutCallback
from .turn import Stand, Turn

if TYPE_CHECKING:
    from .node import Node


# How many steps (messages, forks) the loop takes before letting other
# services run; and a suspending coroutine, before it leaves the rest to the loop.
BATCH = 256
PASS_BUDGET = 16
# How many times a suspending coroutine with a task of its own finds its own
# wake-up next before one trio checkpoint (see Service._park_carried).
OWN_WAKEUPS_PER_CHECKPOINT = 32
SESSION_MAX = 0x7FFFFFFF
# Mailbox length at which "May overload" is first logged; then at each doubling.
OVERLOAD_THRESHOLD = 1024


class Step(enum.Enum):
    """What `Service.advance` did, when it did not hand a task its own wake-up."""

    HANDED = "gave the turn to another task"
    IDLE = "found nothing to do"
    BUDGET_SPENT = "used up its budget with work still waiting"
    CONSCRIPTED = "a coroutine it resumed needs the loop task as its own (Service.conscript)"


# Module-level names for the members: the send and call paths test them
# several times a message, and a global is read in a few nanoseconds where
# an Enum class attribute takes ten times as long.
HANDED: Final = Step.HANDED
IDLE: Final = Step.IDLE
BUDGET_SPENT: Final = Step.BUDGET_SPENT
CONSCRIPTED: Final = Step.CONSCRIPTED


class NotYet(enum.Enum):
    """`take_answer`'s "the answer is not next in line": the caller must suspend for it."""

    NOT_YET = "not yet"


NOT_YET: Final = NotYet.NOT_YET


def call_error(source: int, payload: Any) -> CallError:
    """What an ERROR answer from `source` raises in its caller.

    A CallError given as the answer is raised as it is: a service answering
    for another (a cluster sender for a remote service, through a proxy)
    names what the caller addressed, not itself. Any other reason is named
    with the service that answered.
    """
    if isinstance(payload, CallError):
        return payload
    return CallError(f"call to {address(source)} failed: {payload}")


class Fork(NamedTuple):
    """A coroutine to start when the turn passes: a fork, or a service's start."""

    request: ServedRequest
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    # Answer `request` with what `fn` returns (a command table's function, a
    # service's start), rather than leave the answer to `ret`.
    answers: bool
    what: str  # named in the log if it raises


class Service:
    """A running actor: handle, mailbox and the state of its coroutines."""

    def __init__(self, node: Node, handle: int, label: str) -> None:
        self.node = node
        self.handle = handle
        self.label = label
        self.mailbox: deque[RawMessage] = deque()
        self.turn = Turn()
        # Coroutines to start when the turn passes, in order.
        self.forks: deque[Fork] = deque()
        self.protocols = ProtocolTable(node.protocols)
        # Starts with the node's defaults, such as the debug protocol every service answers.
        self.handlers: dict[int, Handler] = dict(node.default_handlers)
        # session -> the coroutine waiting for it, or a timeout callback.
        self.sessions: dict[int, Fiber | TimeoutCallback] = {}
        # Sessions given up (call timeout, sleep broken by wakeup): a late
        # answer to one is dropped quietly instead of logged as unknown.
        self.abandoned: set[int] = set()
        # wait token -> (the coroutine waiting, its sleep session or 0)
        self.waiting: dict[object, tuple[Fiber, int]] = {}
        # Requests this service still owes an answer, failed on exit.
        self.owed: set[ServedRequest] = set()
        self.request = ServedRequest(0, 0)
        # The request of a plain send run by a plain function: nobody can be
        # answered, so one object serves them all and sends allocate nothing.
        self._send_request = ServedRequest(0, 0)
        # The same for calls: a plain function answers (or is answered for)
        # before its call returns, so one object serves every call it takes;
        # whoever keeps a request past that takes a copy (`owe`).
        self._call_request = ServedRequest(0, 0)
        # The coroutine whose code runs now, if any (plain handlers run with none).
        self.running: Fiber | None = None
        # The coroutine that needs the loop task as its own, and what it
        # yielded, from `step` to the loop (see conscript).
        self.conscripted: tuple[Fiber, Any] | None = None
        # Each coroutine starts with a copy: the loop task's context, in
        # which this service is the current one (set by run).
        self.context = contextvars.Context()
        # Called, newest first, when the service ends (skypy.socket closes its sockets here).
        self.exit_hooks: list[Callable[[], object]] = []
        # State the libraries layered on the core keep for this service, by
        # name (skypy.socket's pool of its sockets), as `Node.extensions` is
        # for the node: the core never looks inside.
        self.libraries: dict[str, Any] = {}
        # Shown every message this service takes, before it is handled (the
        # console's `logon`); None, the usual case, costs one test per message.
        self.message_hook: Callable[[RawMessage], None] | None = None
        # A trace tag a PTYPE_TRACE message just brought: the next request carries it.
        self.trace_next: str | None = None
        self.nursery: trio.Nursery | None = None
        self.dead = False
        self.cancel_scope = trio.CancelScope()
        self.finished = trio.Event()
        self.overload_at = OVERLOAD_THRESHOLD
        # Let it crash (skypy.crash_policy("exit")): a handler that raises ends
        # the service, so that its supervisor starts it again with fresh state.
        self.crash_exits = False
        # What the debug protocol reports: launch arguments, the module
        # namespace (for RUN and MEM), seconds spent running this service's
        # code (charged by the node's meter), and the watchdog's flag.
        self.args: tuple[Any, ...] = ()
        self.namespace: dict[str, Any] | None = None
        self.info_func: Callable[..., Any] | None = None
        self.cpu = 0.0
        self.endless = False
        self.messages_handled = 0
        self.inline_calls = 0
        self.own_wakeups = 0
        self._last_session = 0

    def __repr__(self) -> str:
        return f"<Service {address(self.handle)} {self.label}>"

    # --- sessions -------------------------------------------------------

    def new_session(self) -> int:
        """A fresh positive session, wrapping at 2^31-1 and skipping those in use."""
        session = self._last_session
        while True:
            session = session + 1 if session < SESSION_MAX else 1
            if session not in self.sessions and session not in self.abandoned:
                self._last_session = session
                return session

    def me(self) -> Fiber | Task:
        """Who is running this service's code: the coroutine, or the task running a plain handler."""
        running = self.running
        return current_task() if running is None else running

    def holds_turn(self) -> bool:
        """Whether the code running now holds this service's turn (see turn.py)."""
        return self.turn.holder is self.me()

    async def pause(self) -> None:
        """Let trio run the rest of the node once, the running code keeping the turn.

        For code that would otherwise never suspend (a loop of calls answered
        inline): in a coroutine without a task, the loop task does it.
        """
        fiber = self.running
        if fiber is None or fiber.task is not None:
            await checkpoint()
        else:
            await pause()

    async def carried(self) -> Fiber:
        """The running coroutine, moved to a trio task of its own if it has none (see fiber.py).

        For code that hands the turn about itself (`unlocked` releases it and
        waits to get it back), which only a task can do.
        """
        fiber = self.running
        assert fiber is not None, "not in a coroutine of this service"
        if fiber.task is None:
            await ask_for_task()
        return fiber

    def _waiter(self) -> tuple[Fiber, bool]:
        """The coroutine about to wait, or one standing for a task outside the service; and
        whether it waits without the turn (`borrowed`)."""
        fiber = self.running
        if fiber is None:
            fiber = Fiber(None, None, self.request, False, "task", current_task())
        return fiber, self.turn.holder is not fiber

    def wait_session(self, session: int) -> Awaitable[tuple[Any, ...]]:
        """Suspend the running coroutine until the RESPONSE or ERROR for `session`: await what this returns.

        Not a coroutine function itself, so that the usual case, a coroutine
        holding the turn, costs one frame fewer per suspension.
        """
        fiber = self.running
        if fiber is None or self.turn.holder is not fiber:
            fiber = self._waiter()[0]
            borrowed = True
        else:
            borrowed = False
        self.sessions[session] = fiber
        fiber.session = session
        fiber.token = None
        return self._wait_borrowed(fiber) if borrowed else suspend()

    def suspend_until_woken(self, token: object, session: int = 0) -> Awaitable[Any]:
        """Park under `token` until `wakeup(token)`, or until `session` (a sleep) answers: await what this returns.

        Not a coroutine function itself: in the usual case (a socket read: a
        coroutine holding the turn, no sleep) it costs no frame of its own,
        and whoever resumes the coroutine has taken the token off already
        (`wakeup`, or `forget` when trio cancels its task).
        """
        if token in self.waiting:
            raise SkypyError(f"{address(self.handle)}: wait token {token!r} is already in use")
        fiber = self.running
        if session or fiber is None or self.turn.holder is not fiber:
            return self._suspend_until_woken(token, session)
        self.waiting[token] = (fiber, 0)
        fiber.session = 0
        fiber.token = token
        return suspend()

    async def _suspend_until_woken(self, token: object, session: int) -> Any:
        """`suspend_until_woken` for a sleep, or for a waiter without the turn."""
        fiber, borrowed = self._waiter()
        self.waiting[token] = (fiber, session)
        if session:
            self.sessions[session] = fiber
        fiber.session = session
        fiber.token = token
        try:
            if borrowed:
                return await self._wait_borrowed(fiber)
            return await suspend()
        finally:
            # Still there if `session` (a sleep's end) woke it, or trio cancelled its task.
            self.waiting.pop(token, None)
            fiber.token = None  # it may be the fiber itself (the default token): no cycle

    async def _wait_borrowed(self, fiber: Fiber) -> Any:
        """Wait without holding the turn: a task that is not one of the service's coroutines (the
        `open_node` block, a task the user spawned), or a coroutine inside `unlocked`.

        Registering its session or token needed no turn, and was done before
        any await, so no wakeup can slip in between. It is resumed like any
        coroutine, holding the turn, and hands it straight back, since
        nothing would pass it on once the task is back in plain trio.
        """
        request = self.request
        try:
            if fiber.coro is not None:
                return await suspend()
            return raised(await wait_task_rescheduled(self.turn.abort_for(fiber, self.forget)))
        finally:
            self.request = request
            if self.turn.holder is fiber:
                self.turn.release()

    def forget(self, fiber: Fiber) -> bool:
        """Undo what would wake parked `fiber` (trio is cancelling its task); False if it was woken already."""
        session, token = fiber.session, fiber.token
        if token is not None:
            entry = self.waiting.get(token)
            if entry is None or entry[0] is not fiber:
                return False
            del self.waiting[token]
            fiber.token = None
        elif self.sessions.get(session) is not fiber:
            return False
        if session and self.sessions.pop(session, None) is not None:
            self.abandoned.add(session)
        return True

    def wake_after(self, seconds: float, session: int) -> None:
        """Answer `session` (an empty RESPONSE) after `seconds`: a sleep's end, a timeout.

        A zero delay is a message queued now, behind those already waiting,
        not a timer that might fire after later messages.
        """
        if seconds > 0:
            self.node.timers.add(seconds, self.handle, session)
        else:
            self.node.post(self.handle, (0, session, PTYPE_RESPONSE, ()))

    async def wait_session_within(self, session: int, seconds: float) -> tuple[Any, ...]:
        """`wait_session`, raising trio.TooSlowError if no answer came within `seconds`.

        The limit is a timer session of this service (a message, as skynet's
        timeouts are), not a trio cancel scope: a coroutine waits for it
        without a trio task of its own. A late answer is dropped quietly.
        """
        timer = self.new_session()

        def expire() -> None:
            fiber = self.sessions.pop(session, None)
            if isinstance(fiber, Fiber):  # still waiting
                self.abandoned.add(session)
                self.turn.wake(fiber, outcome.Error(trio.TooSlowError()))  # raised where it waits

        self.sessions[timer] = TimeoutCallback(expire)
        self.wake_after(seconds, timer)
        try:
            return await self.wait_session(session)
        finally:
            if self.sessions.pop(timer, None) is not None:
                self.abandoned.add(timer)

    def wakeup(self, token: object) -> bool:
        """Resume the coroutine waiting on `token` at the waker's next suspension."""
        entry = self.waiting.pop(token, None)
        if entry is None:
            return False
        fiber, session = entry
        fiber.token = None  # it may be the fiber itself (the default token): no cycle
        if session:
            del self.sessions[session]
            self.abandoned.add(session)
        self.turn.wake(fiber, "BREAK" if session else None)
        return True

    # --- answering requests ---------------------------------------------

    def answer(self, request: ServedRequest, ok: bool, payload: Any) -> None:
        """Send the RESPONSE (or ERROR) that `request`'s caller waits for."""
        self.owed.discard(request)
        ptype = PTYPE_RESPONSE if ok else PTYPE_ERROR
        self.node.post(request.source, (self.handle, request.session, ptype, payload))

    def finish(self, request: ServedRequest, result: Any, answers: bool) -> None:
        """A coroutine serving `request` ended with `result`: answer with it, or log a forgotten answer.

        With `answers` (a command of `dispatch_commands`), a tuple is several
        values, as ``return a, b`` is in Lua: ``ret(*result)``; anything else
        is one value.
        """
        if request.session == 0 or request.answered:
            return
        request.answered = True
        if answers:
            self.answer(request, True, result if type(result) is tuple else (result,))
        elif request.ignored:
            self.owed.discard(request)
        else:
            self.node.log(
                self.handle,
                f"Maybe forgot response session {request.session} from {address(request.source)}",
                logging.WARNING,
            )
            self.answer(request, False, "the handler ended without answering")

    def failed(self, request: ServedRequest, exc: BaseException, what: str) -> None:
        """A coroutine raised `exc`: log it, tell the crash hooks, fail `request`'s caller, and end
        the service if its crash policy says so.

        Not once the service is retired (killed, exited, or the node closing):
        a coroutine already rescheduled takes one more step before its
        cancellation lands, and what fails in it (a call to a service gone
        too, a socket closed) is the ending itself, not a crash.
        """
        if self.dead:
            return
        self.node.log(
            self.handle,
            f"{what} raised:\n" + "".join(traceback.format_exception(exc)).rstrip(),
            logging.ERROR,
        )
        for hook in self.node.crash_hooks:
            hook(self, what, exc)
        if request.session and not request.answered:
            request.answered = True
            self.answer(request, False, f"{type(exc).__name__}: {exc}")
        if self.crash_exits and what != "start":  # a failed start has a reason of its own
            self.node.retire(self, ExitReason.CRASH)

    # --- the loop ---------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The first loop task: hand the turn on in skynet's order until the service exits."""
        current.set(self)
        self.context = contextvars.copy_context()
        task_status.started()
        try:
            with self.cancel_scope:
                async with trio.open_nursery() as nursery:
                    self.nursery = nursery
                    await self._loop()
        finally:
            self.finished.set()

    async def _loop(self) -> None:
        """Be the loop task until the service ends, or until a coroutine needs this task as its own."""
        turn = self.turn
        me = turn.loop_task = current_task()
        if turn.holder is Stand.SPAWNING:
            turn.holder = me
        else:
            await turn.park_loop()
        while True:
            step = self.advance(me, BATCH)
            if step is BUDGET_SPENT:
                await checkpoint()
            elif step is CONSCRIPTED:
                await self.conscript()
                return
            else:
                await turn.park_loop()

    def advance(self, me: Task, budget: int) -> Step | tuple[Resumption]:
        """Take the next steps in skynet's order, in task `me`, until another task holds the turn.

        Woken coroutines first, then forks, then mailbox messages (plain
        handlers run right here). Returns a Step, or (in a 1-tuple) what was
        handed to `me` itself when its own coroutine's wake-up came next.
        """
        turn = self.turn
        turn.passing = me
        try:
            while budget:  # not `for … in range`: most calls take one or two steps, and the range costs more
                budget -= 1
                if turn.closed:
                    return HANDED
                # Read each time: a coroutine resumed here may swap it (hold_requests).
                mailbox = self.mailbox
                if turn.ready:
                    fiber, value = turn.ready.popleft()
                    if fiber.task is None and turn.passing is turn.loop_task:
                        step = self.step(fiber, value)  # resume's usual case, without its call
                    else:
                        step = self.resume(fiber, value)
                elif self.forks:
                    step = self.invoke(*self.forks.popleft())
                elif mailbox:
                    step = self.dispatch(mailbox.popleft())
                else:
                    self.overload_at = OVERLOAD_THRESHOLD
                    turn.holder = None
                    return IDLE
                if step is None:
                    continue
                if step is HANDED:
                    own, turn.own = turn.own, None
                    return HANDED if own is None else own
                return step
            return BUDGET_SPENT
        finally:
            turn.passing = None

    def resume(self, fiber: Fiber, value: Resumption) -> Step | None:
        """Resume (or start, with `value` None) `fiber` in skynet's order: now, if the loop task
        is the one passing the turn; else by handing the turn to its task, or to the loop.

        None when the turn is still with the task passing it.
        """
        turn = self.turn
        if fiber.task is not None:
            turn.hand_to(fiber, value)
            return HANDED
        if turn.passing is not turn.loop_task:
            # Only the loop task resumes a coroutine that has no task: it may
            # need the task resuming it for its own (see conscript).
            turn.ready.appendleft((fiber, value))
            turn.give_loop()
            return HANDED
        return self.step(fiber, value)

    def step(self, fiber: Fiber, value: Resumption) -> Step | None:
        """Run `fiber` in the loop task until it suspends or ends; CONSCRIPTED if it needs this task.

        It needs it when it yields one of trio's own traps (trio registered
        this task as the one waiting), asks for a task of its own, or
        suspends inside a cancel scope it opened (the scope is this task's).
        """
        turn = self.turn
        loop: Task = turn.passing  # type: ignore[assignment]  # the loop task, in advance
        scopes = loop._cancel_status  # trio gives no public view of a task's open cancel scopes
        turn.holder = fiber
        try:
            yielded = self.send(fiber, value)
        finally:
            if not turn.closed:
                turn.holder = loop
        if yielded is ENDED or yielded is SUSPEND and loop._cancel_status is scopes:
            return None
        if loop._cancel_status is scopes:
            if yielded is PAUSE:
                # The loop task lets trio run once, then resumes it first.
                turn.ready.appendleft((fiber, None))
                return BUDGET_SPENT
        self.conscripted = (fiber, yielded)
        turn.holder = fiber
        return CONSCRIPTED

    async def conscript(self) -> None:
        """The loop task becomes the own task of the coroutine it just resumed (see `step`);
        a new loop task takes over the service."""
        assert self.conscripted is not None and self.nursery is not None
        fiber, yielded = self.conscripted
        self.conscripted = None
        turn = self.turn
        turn.loop_task = None
        self.nursery.start_soon(self._loop, name=f"skypy{address(self.handle)} {self.label}")
        await self.carry(fiber, yielded)

    async def carry(self, fiber: Fiber, yielded: Any) -> None:
        """Run `fiber` in this task until it ends, from where it yielded `yielded`.

        trio's traps go to trio as they are, and what trio sends back goes to
        the coroutine; a skypy suspension parks this task until the waker
        hands it the turn. Once the coroutine ends, the turn is passed on and
        the task ends.
        """
        turn = self.turn
        fiber.task = current_task()
        value: Any = None
        while yielded is not ENDED:
            if yielded is SUSPEND or yielded is PAUSE:
                try:
                    value = await (self._park_carried(fiber) if yielded is SUSPEND else checkpoint())
                except BaseException as exc:  # trio's cancellation, say: raised in the coroutine, where it waits
                    value = outcome.Error(exc)
            elif yielded is CARRY:
                value = None
            else:
                value = await forward_trap(yielded)
            yielded = self.send(fiber, value)
        if turn.holder is fiber:  # (not once the service has ended: its turn is closed)
            turn.release()

    def send(self, fiber: Fiber, value: Resumption) -> Any:
        """Run `fiber` from where it waits, with `value`, until it yields: what it yielded, or ENDED
        once it has returned (its answer given) or raised (logged, its caller failed)."""
        self.running = fiber
        self.request = fiber.request
        try:
            return fiber.context.run(fiber.coro.send, value)  # type: ignore[union-attr]  # set for a coroutine
        except StopIteration as stop:
            self.finish(fiber.request, stop.value, fiber.answers)
        except ServiceExit:
            pass
        except Exception as exc:
            self.failed(fiber.request, exc, fiber.what)
        finally:
            self.running = None
        return ENDED

    async def _park_carried(self, fiber: Fiber) -> Any:
        """Park the task of `fiber` until woken, passing the turn on first if the fiber holds it."""
        turn = self.turn
        task = fiber.task
        assert task is not None
        if turn.holder is fiber:
            turn.holder = task
            own = self.pass_turn(task)
            if own is not None:
                # Its own wake-up came next, so it carries on without parking.
                # A loop of such suspensions (yield_ with nothing else queued)
                # would never let trio run the rest of the node: now and then,
                # it does, keeping the turn.
                self.own_wakeups += 1
                if self.own_wakeups % OWN_WAKEUPS_PER_CHECKPOINT == 0:
                    await cancel_shielded_checkpoint()
                return own[0]
        return await wait_task_rescheduled(turn.abort_for(fiber, self.forget))

    def pass_turn(self, me: Task) -> tuple[Resumption] | None:
        """A coroutine's own task, suspending, passes the turn on itself, saving a round through the loop task.

        Returns what was handed to `me` if its own wake-up came next (it then
        carries on without parking), else None.
        """
        step = self.advance(me, PASS_BUDGET)
        if step is BUDGET_SPENT:
            self.turn.give_loop()
        elif step is not HANDED and step is not IDLE:
            assert not isinstance(step, Step)
            return step
        return None

    def close_fibers(self) -> None:
        """Close the coroutines parked without a task of their own, as the service ends.

        They run their ``finally`` blocks now (GeneratorExit where they
        wait), as trio's cancellation ends the coroutines that have a task.
        One that has not started yet (a handler's, queued behind the running
        one) is closed without running: none of a dead service's code runs.
        """
        parked = [w for w in self.sessions.values() if type(w) is Fiber]
        parked += [fiber for fiber, _ in self.waiting.values()]
        parked += [fiber for fiber, _ in self.turn.ready]
        self.turn.ready.clear()
        for fiber in {id(f): f for f in parked if f.task is None and f.coro is not None}.values():
            assert fiber.context is not None and fiber.coro is not None
            try:
                fiber.context.run(fiber.coro.close)
            except Exception:
                pass  # it awaited again while closing: nothing can resume it now

    def dispatch(self, msg: RawMessage) -> Step | None:
        """Handle one message; None if the task passing the turn still holds it, else what `advance` returns."""
        self.messages_handled += 1
        if self.message_hook is not None:
            self.message_hook(msg)
        source, session, ptype, payload = msg
        if ptype == PTYPE_RESPONSE or ptype == PTYPE_ERROR:
            waiter = self.sessions.pop(session, None)
            if not isinstance(waiter, Fiber):
                return self._answer_nobody_waits(source, session, waiter)
            # An answer resumes its coroutine: the usual case, inlined.
            value = payload if ptype == PTYPE_RESPONSE else outcome.Error(call_error(source, payload))
            turn = self.turn
            if waiter.task is None and turn.passing is turn.loop_task:
                return self.step(waiter, value)  # resume's usual case, without its call
            return self.resume(waiter, value)
        handler = self.handlers.get(ptype)
        if handler is None:
            self._unhandled(source, session, ptype)
            return None
        unpack = self.protocols.unpackers.get(ptype)
        args = payload if unpack is None else unpack(payload)
        if session:
            request = self._call_request  # owed, as a copy, once it can outlive its handler (`owe`)
            request.session = session
            request.source = source
            request.answered = request.ignored = False
            request.trace = None
        else:
            request = self._send_request
            request.source = source
            request.answered = False
        if self.trace_next is not None:
            if request is self._send_request:
                request = ServedRequest(0, source)  # the shared one never carries a trace
            request.trace, self.trace_next = self.trace_next, None
        fn = handler.fn
        if fn is not None:
            return self.invoke(request, fn, (session, source, *args), False, "handler")
        commands = handler.commands
        if commands is None or not args or args[0] not in commands:
            exc = SkypyError(f"{address(self.handle)} has no command {args[0] if args else None!r}")
            self.failed(request, exc, "command dispatch")
            return None
        return self.invoke(request, commands[args[0]], args[1:], True, f"command {args[0]!r}")

    def run_inline(self, msg: RawMessage | None, budget: int = PASS_BUDGET, started: float | None = None) -> float:
        """Deliver `msg` (if any) to this idle service and run it in this task, which is not
        its own, saving task switches; the time (perf_counter) the run ended.

        Only for an idle service (nothing woken or forked, its loop parked, or
        QUEUED for the task of a delivering block), so what is queued is what
        its loop would take next. This task then acts as the loop until
        another task holds the turn (a coroutine a message woke, say), as a
        suspending coroutine does, for up to `budget` steps. The run is
        charged to this service: from now, and lent back to the caller's
        task step (a call to an idle service); or, given `started`, from
        then, lending nothing (a delivering block, whose task is no
        service's, runs services back to back).
        """
        turn = self.turn
        me = current_task()
        if msg is not None:
            self.mailbox.append(msg)
        lent = started is None
        if started is None:
            started = perf_counter()
        turn.holder = me
        token = current.set(self)
        try:
            if self.advance(me, budget) is BUDGET_SPENT:
                turn.give_loop()
        finally:
            current.reset(token)
            ended = perf_counter()
            spent = ended - started
            self.cpu += spent
            if lent:
                self.node.meter.lent += spent
            if turn.holder is me:  # a BaseException escaped a handler: the turn goes back
                turn.holder = None
                if self.mailbox or self.forks or turn.ready:
                    turn.kick()
        return ended

    def take_answer(self, session: int) -> tuple[Any, ...] | NotYet:
        """The values answering `session` if its RESPONSE is next in line; CallError if ERROR; else NOT_YET.

        Lets a caller holding the turn skip suspending when nothing else of
        its service would run before the answer anyway.
        """
        mailbox = self.mailbox
        if not mailbox or self.turn.ready or self.forks:
            return NOT_YET
        source, answered, ptype, payload = mailbox[0]
        if answered != session or (ptype != PTYPE_RESPONSE and ptype != PTYPE_ERROR):
            return NOT_YET
        msg = mailbox.popleft()
        self.messages_handled += 1
        if self.message_hook is not None:
            self.message_hook(msg)
        if ptype == PTYPE_ERROR:
            raise call_error(source, payload)
        values: tuple[Any, ...] = payload
        return values

    def invoke(
        self, request: ServedRequest, fn: Callable[..., Any], args: tuple[Any, ...], answers: bool, what: str
    ) -> Step | None:
        """Run `fn` for `request`: a plain function right here, a coroutine as a new Fiber.

        A request goes into `owed`, which the service's end fails, only once
        it can outlive the handler's call unanswered (a coroutine, an escaping
        BaseException, `response`: see `owe`): a plain handler answers, or is
        answered for, before this returns, and most calls are served so, all
        with one shared request object. One that ends the service (`exit`)
        is failed as the request being served (`Node.retire`).
        """
        self.request = request
        try:
            result = fn(*args)
        except ServiceExit:
            return None
        except Exception as exc:
            self.failed(request, exc, what)
            return None
        except BaseException:
            if request.session and not request.answered:
                self.owe(request)
            raise
        if type(result) is CoroutineType:
            if request is self._send_request:
                # The shared request of plain sends is reused by the next
                # message; a coroutine that outlives this one needs its own.
                request = ServedRequest(0, request.source)
            elif request.session and not request.answered:
                request = self.owe(request)
            elif request is self._call_request:
                request = request.copy()  # answered already: kept as it is, owing nothing
            return self.resume(Fiber(result, self.context.copy(), request, answers, what), None)
        if request.session and not request.answered:
            self.finish(request, result, answers)
        return None

    def owe(self, request: ServedRequest) -> ServedRequest:
        """Keep `request` owed past its handler's call (failed when the service ends): the
        request itself, or a copy if it is the one plain calls share, which then counts as
        answered, the copy answering for it."""
        if request is self._call_request:
            request = request.copy()
            self._call_request.answered = True
        self.owed.add(request)
        return request

    def _answer_nobody_waits(self, source: int, session: int, waiter: TimeoutCallback | None) -> Step | None:
        """An answer no coroutine waits for: a timer's callback to start, a late answer to drop, or an unknown one."""
        if waiter is not None:
            return self.invoke(ServedRequest(0, 0), waiter.fn, (), False, "timeout callback")
        if session in self.abandoned:
            self.abandoned.discard(session)
        elif session:
            self.node.log(self.handle, f"Unknown session : {session} from {address(source)}", logging.WARNING)
        return None

    def _unhandled(self, source: int, session: int, ptype: int) -> None:
        name = self.protocols.name_of(ptype)
        self.node.log(
            self.handle, f"Unknown request ({name}): session {session} from {address(source)}"
        )
        if session:
            self.node.post(source, (self.handle, session, PTYPE_ERROR, f"no dispatch for protocol {name}"))

    # --- holding requests (a reload in place) ------------------------------

    def hold_requests(self) -> None:
        """Keep every request aside from now on, letting answers through, until `release_requests`.

        For `skypy.reload`: the new code may suspend while it starts, and what
        arrives meanwhile is for the new code. The mailbox is swapped for a
        `HoldingMailbox` rather than tested on each message, so a service
        that is not held pays nothing.
        """
        if not isinstance(self.mailbox, HoldingMailbox):
            self.mailbox = HoldingMailbox(self.mailbox)

    def release_requests(self) -> None:
        """Put the held requests back in the mailbox where they arrived, and wake the loop for them."""
        mailbox = self.mailbox
        if isinstance(mailbox, HoldingMailbox):
            self.mailbox = mailbox.released()
            if self.mailbox:
                self.turn.kick()
