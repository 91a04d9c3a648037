"""One service: its mailbox, its loop, its coroutines, sessions and requests.

Messages are taken in arrival order by whichever task holds the service's
turn (turn.py): the loop task, a coroutine that just suspended, or a sender
running an idle service inline. A handler that is a plain function runs
right there, with no task switch; one that returns a coroutine gets a worker
task (workers.py) that runs it under the turn.
"""

from __future__ import annotations

import enum
import traceback
from collections import deque
from time import perf_counter
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Callable, Final, NamedTuple

import outcome
import trio
from trio.lowlevel import Task, cancel_shielded_checkpoint, current_task, wait_task_rescheduled

from ..errors import CallError, ServiceExit, SkypyError
from .current import current
from .holding import HoldingMailbox
from .message import PTYPE_ERROR, PTYPE_RESPONSE, RawMessage, address
from .monitors import ExitReason
from .protocol import Handler, ProtocolTable
from .request import ServedRequest, TimeoutCallback
from .turn import Turn
from .workers import Job, Workers

if TYPE_CHECKING:
    from .node import Node


# How many steps (messages, forks) the loop takes before letting other
# services run; and a suspending coroutine, before it leaves the rest to the loop.
BATCH = 256
PASS_BUDGET = 16
# How many times a suspending coroutine finds its own wake-up next before
# one trio checkpoint (see park).
OWN_WAKEUPS_PER_CHECKPOINT = 32
SESSION_MAX = 0x7FFFFFFF
# Mailbox length at which "May overload" is first logged; then at each doubling.
OVERLOAD_THRESHOLD = 1024


class Step(enum.Enum):
    """What `Service.advance` did, when it did not hand a task its own wake-up."""

    HANDED = "gave the turn to another task"
    IDLE = "found nothing to do"
    BUDGET_SPENT = "used up its budget with work still waiting"


# Module-level names for the members: the send and call paths test them
# several times a message, and a global is read in a few nanoseconds where
# an Enum class attribute takes ten times as long.
HANDED: Final = Step.HANDED
IDLE: Final = Step.IDLE
BUDGET_SPENT: Final = Step.BUDGET_SPENT


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
        # session -> the parked task waiting for it, or a timeout callback.
        self.sessions: dict[int, Task | TimeoutCallback] = {}
        # Sessions given up (call timeout, sleep broken by wakeup): a late
        # answer to one is dropped quietly instead of logged as unknown.
        self.abandoned: set[int] = set()
        # wait token -> (parked task, its sleep session or 0)
        self.waiting: dict[object, tuple[Task, int]] = {}
        # Requests this service still owes an answer, failed on exit.
        self.owed: set[ServedRequest] = set()
        self.request = ServedRequest(0, 0)
        # The request of a plain send run by a plain function: nobody can be
        # answered, so one object serves them all and sends allocate nothing.
        self._send_request = ServedRequest(0, 0)
        self.workers = Workers(self)
        # Called, newest first, when the service ends (skypy.socket closes its sockets here).
        self.exit_hooks: list[Callable[[], object]] = []
        # Shown every message this service takes, before it is handled (the
        # console's `logon`); None, the usual case, costs one test per message.
        self.message_hook: Callable[[RawMessage], None] | None = None
        # task -> called with it when that coroutine next parks, unlocks or
        # ends: a socket it reads itself goes back to the socket server's
        # reader task (skypy/_net/pull.py).
        self.suspend_hooks: dict[Task, Callable[[Task], None]] = {}
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
        # A mailbox message was taken since the turn was last freed for
        # contenders (see advance).
        self.mail_taken = False
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

    async def wait_session(self, session: int) -> tuple[Any, ...]:
        """Suspend the running coroutine until the RESPONSE or ERROR for `session`."""
        task = current_task()
        borrowed = self.turn.holder is not task
        self.sessions[session] = task
        request = self.request

        def forget() -> bool:
            if self.sessions.pop(session, None) is None:
                return False
            self.abandoned.add(session)
            return True

        try:
            values: tuple[Any, ...] = await self.park(forget, holding=not borrowed)
            return values
        finally:
            self._resumed(request, borrowed)

    async def suspend_until_woken(self, token: object, session: int = 0) -> Any:
        """Park under `token` until `wakeup(token)`, or until `session` (a sleep) answers."""
        task = current_task()
        borrowed = self.turn.holder is not task
        if token in self.waiting:
            raise SkypyError(f"{address(self.handle)}: wait token {token!r} is already in use")
        self.waiting[token] = (task, session)
        if session:
            self.sessions[session] = task
        request = self.request

        def forget() -> bool:
            if self.waiting.pop(token, None) is None:
                return False
            if session and self.sessions.pop(session, None) is not None:
                self.abandoned.add(session)
            return True

        try:
            return await self.park(forget, holding=not borrowed)
        finally:
            self.waiting.pop(token, None)
            self._resumed(request, borrowed)

    def _resumed(self, request: ServedRequest, borrowed: bool) -> None:
        # A task that is not one of the service's coroutines (the `open_node`
        # block, or a task the user spawned inside a handler) waits without
        # the turn: registering its session or token needs none, and doing it
        # before any await means no wakeup can slip in between. It is resumed
        # like any coroutine, holding the turn, and hands it straight back,
        # since nothing would pass it on once the task is back in plain trio.
        self.request = request
        if borrowed and self.turn.holder is current_task():
            self.turn.release()

    def wakeup(self, token: object) -> bool:
        """Resume the coroutine waiting on `token` at the waker's next suspension."""
        entry = self.waiting.pop(token, None)
        if entry is None:
            return False
        task, session = entry
        if session:
            del self.sessions[session]
            self.abandoned.add(session)
        self.turn.wake(task, outcome.Value("BREAK" if session else None))
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
        """The loop task: hand the turn on in skynet's order until the service exits."""
        current.set(self)
        turn = self.turn
        turn.loop_task = current_task()
        task_status.started()
        try:
            with self.cancel_scope:
                async with trio.open_nursery() as nursery:
                    self.nursery = nursery
                    await self._loop(turn)
        finally:
            self.finished.set()

    async def _loop(self, turn: Turn) -> None:
        loop_task = turn.holder = turn.loop_task
        while True:
            if self.advance(loop_task, BATCH) is BUDGET_SPENT:
                await trio.lowlevel.checkpoint()
            else:
                await turn.park_loop()

    def advance(self, me: Task, budget: int) -> Step | outcome.Outcome[Any]:
        """Take the next steps in skynet's order, in task `me`, until another task holds the turn.

        Woken coroutines first, then forks, then mailbox messages (plain
        handlers run right here). Returns a Step, or the outcome handed to
        `me` itself when its own wake-up came next.
        """
        turn = self.turn
        mailbox = self.mailbox
        turn.passing = me
        try:
            for _ in range(budget):
                if turn.closed:
                    return HANDED
                if turn.ready:
                    turn.hand_to(*turn.ready.popleft())
                elif self.forks:
                    if not self.invoke(*self.forks.popleft()):
                        continue
                elif turn.contenders and (self.mail_taken or not mailbox):
                    # Coroutines back from reading their own sockets
                    # (skypy/_net/pull.py) take the free turn one after
                    # another; with a message at least between two such
                    # rounds, neither they nor the mailbox can starve.
                    self.mail_taken = False
                    turn.free()
                    return IDLE
                elif mailbox:
                    self.mail_taken = True
                    if not self.dispatch(mailbox.popleft()):
                        continue
                else:
                    self.overload_at = OVERLOAD_THRESHOLD
                    turn.holder = None
                    return IDLE
                own, turn.own = turn.own, None
                return HANDED if own is None else own
            return BUDGET_SPENT
        finally:
            turn.passing = None

    def pass_turn(self, me: Task) -> outcome.Outcome[Any] | None:
        """A suspending coroutine passes the turn on itself, saving a round through the loop task.

        Returns what was handed to `me` if its own wake-up came next (it then
        carries on without parking), else None.
        """
        step = self.advance(me, PASS_BUDGET)
        if step is BUDGET_SPENT:
            self.turn.give_loop()
        elif step is not HANDED and step is not IDLE:
            return step
        return None

    async def park(self, unregister: Callable[[], bool], holding: bool) -> Any:
        """Suspend the running task until woken; it passes the turn on first if `holding` it."""
        task = current_task()
        if holding:
            own = self.pass_turn(task)
            if own is not None:
                # Its own wake-up came next, so it carries on without parking.
                # A loop of such suspensions (yield_ with nothing else queued)
                # would never let trio run the rest of the node: now and then,
                # it does, keeping the turn.
                self.own_wakeups += 1
                if self.own_wakeups % OWN_WAKEUPS_PER_CHECKPOINT == 0:
                    await cancel_shielded_checkpoint()
                return own.unwrap()
        if self.suspend_hooks:
            # Only now that it really parks: a wake-up of its own next is
            # not a suspension anyone else could see.
            self.suspending(task)
        return await wait_task_rescheduled(self.turn.abort_for(task, unregister))

    def suspending(self, task: Task) -> None:
        """`task` gives up the turn: run the hook it left, if any."""
        hook = self.suspend_hooks.pop(task, None)
        if hook is not None:
            hook(task)

    def dispatch(self, msg: RawMessage) -> bool:
        """Handle one message; True when a coroutine now holds the turn."""
        self.messages_handled += 1
        if self.message_hook is not None:
            self.message_hook(msg)
        source, session, ptype, payload = msg
        if ptype == PTYPE_RESPONSE or ptype == PTYPE_ERROR:
            return self._deliver_answer(source, session, ptype, payload)
        handler = self.handlers.get(ptype)
        if handler is None:
            return self._unhandled(source, session, ptype)
        unpack = self.protocols.unpackers.get(ptype)
        args = payload if unpack is None else unpack(payload)
        if session:
            request = ServedRequest(session, source)
            self.owed.add(request)
        else:
            request = self._send_request
            request.source = source
            request.answered = False
        fn = handler.fn
        if fn is not None:
            return self.invoke(request, fn, (session, source, *args), False, "handler")
        commands = handler.commands
        if commands is None or not args or args[0] not in commands:
            exc = SkypyError(f"{address(self.handle)} has no command {args[0] if args else None!r}")
            self.failed(request, exc, "command dispatch")
            return False
        return self.invoke(request, commands[args[0]], args[1:], True, f"command {args[0]!r}")

    def run_inline(self, msg: RawMessage | None) -> None:
        """Deliver `msg` to this idle service and run it in the sender's task, saving task switches.

        Only for an idle service (nothing woken or forked, its loop parked), so
        the message is what its loop would take after those already queued;
        the sender's task then acts as the loop until another task holds the
        turn (a coroutine the message woke, say), as a suspending coroutine
        does. With `msg` None it runs what is already queued.
        """
        turn = self.turn
        me = current_task()
        if msg is not None:
            self.mailbox.append(msg)
        turn.holder = me
        token = current.set(self)
        started = perf_counter()
        try:
            if self.advance(me, PASS_BUDGET) is BUDGET_SPENT:
                turn.give_loop()
        finally:
            current.reset(token)
            # The sender's task step ran our code: charge it to us, not to them.
            spent = perf_counter() - started
            self.cpu += spent
            self.node.meter.lent += spent
            if turn.holder is me:  # a BaseException escaped a handler: the turn goes back
                turn.free()
                if self.mailbox or self.forks or turn.ready:
                    turn.kick()

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
    ) -> bool:
        """Run `fn` for `request`: inline if it is plain, else as a new coroutine."""
        self.request = request
        try:
            result = fn(*args)
        except ServiceExit:
            return False
        except Exception as exc:
            self.failed(request, exc, what)
            return False
        if type(result) is CoroutineType:
            if request is self._send_request:
                # The shared request of plain sends is reused by the next
                # message; a coroutine that outlives this one needs its own.
                request = ServedRequest(0, request.source)
            self.workers.start(Job(request, result, answers, what))
            return True
        if request.session and not request.answered:
            self.finish(request, result, answers)
        return False

    def _deliver_answer(self, source: int, session: int, ptype: int, payload: Any) -> bool:
        waiter = self.sessions.pop(session, None)
        if waiter is None:
            if session in self.abandoned:
                self.abandoned.discard(session)
            elif session:
                self.node.log(self.handle, f"Unknown session : {session} from {address(source)}")
            return False
        if isinstance(waiter, TimeoutCallback):
            return self.invoke(ServedRequest(0, 0), waiter.fn, (), False, "timeout callback")
        if ptype == PTYPE_RESPONSE:
            value: outcome.Outcome[Any] = outcome.Value(payload)
        else:
            value = outcome.Error(call_error(source, payload))
        self.turn.hand_to(waiter, value)
        return True

    def _unhandled(self, source: int, session: int, ptype: int) -> bool:
        name = self.protocols.name_of(ptype)
        self.node.log(
            self.handle, f"Unknown request ({name}): session {session} from {address(source)}"
        )
        if session:
            self.node.post(source, (self.handle, session, PTYPE_ERROR, f"no dispatch for protocol {name}"))
        return False

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
