"""skypy.supervisor: services that start services, and start them again when they end (OTP's rules).

    from skypy import supervisor

    sup = await supervisor.start([
        supervisor.child("simpledb", name=".db"),
        supervisor.child("lobby", name=".lobby", restart="permanent", crash_policy="exit"),
    ], strategy="one_for_one", intensity=3, period=5.0)

A supervisor is an ordinary service, built on the public service API: it
starts its children in list order, monitors each, and when one ends applies
its strategy — `one_for_one` restarts that child; `one_for_all` stops the
others (reverse start order) and restarts all; `rest_for_one` stops the
children started after it and restarts it and them; `simple_one_for_one` is
a pool of identical children added with `start_child`. A child's `restart`
says when it comes back: `permanent` always, `transient` after an abnormal
end (anything but `exit()`), `temporary` never. More than `intensity`
restarts within `period` seconds, counted over all children, and the
supervisor stops every child and ends itself with reason "crash", so that
its own supervisor (they nest: `nested`) sees it.

A restarted child is a new service with a new handle; its `name` is given
to it again once its main has returned, so callers using the name reach it.
Every change to the tree (a child ending, a command) runs in one critical
section of the supervisor, one at a time, in arrival order.
"""

from __future__ import annotations

import enum
from collections import deque
from functools import partial
from typing import Any, Callable, Iterable, Literal, NamedTuple, NoReturn

import attrs
import trio

from ._api import lifecycle, messages as api
from ._api.critical import CriticalSection
from ._api.monitors import demonitor, monitor
from ._api.stopping import on_stop, stop, stop_reason
from ._core.message import address, handle as parse_address
from ._core.monitors import ExitReason, Monitor
from .errors import CallError, ServiceExit, SkypyError

__all__ = [
    "ChildInfo", "ChildSpec", "Restart", "Strategy", "child", "children", "nested", "restart_child", "start",
    "start_child", "terminate_child", "tree",
]


class Strategy(enum.StrEnum):
    """Which children a supervisor restarts when one ends."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"
    SIMPLE_ONE_FOR_ONE = "simple_one_for_one"


class Restart(enum.StrEnum):
    """When a child that ended is started again."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # unless it ended with exit()
    TEMPORARY = "temporary"  # never, not even when a sibling's restart took it down


@attrs.frozen
class ChildSpec:
    """How a supervisor starts one child: `child()` makes one."""

    service: str | Callable[..., Any]  # a module name on the service path, or an async main
    args: tuple[Any, ...] = ()
    name: str | None = None  # a .name given to each instance once its main has returned
    restart: Restart = Restart.PERMANENT
    shutdown: float | None = 5.0  # seconds its stop hooks get when it is stopped; None: for ever
    crash_policy: Literal["log", "exit"] | None = None  # None: the child's own choice

    @property
    def label(self) -> str:
        """The child's id in its supervisor: its name, else its service's."""
        if self.name is not None:
            return self.name
        if isinstance(self.service, str):
            return self.service
        return str(getattr(self.service, "__qualname__", self.service))


class ChildInfo(NamedTuple):
    """One child as `children` lists it."""

    id: str  # its name, else its service's name
    handle: int | None  # None while it is not running
    restart: Restart


def child(
    service: str | Callable[..., Any],
    *args: Any,
    name: str | None = None,
    restart: Restart | Literal["permanent", "transient", "temporary"] = Restart.PERMANENT,
    shutdown: float | None = 5.0,
    crash_policy: Literal["log", "exit"] | None = None,
) -> ChildSpec:
    """A child spec: start ``service(*args)``, name it `name`, restart it per `restart`.

    `crash_policy` "exit" makes a handler's unhandled exception end the
    child (see `skypy.crash_policy`), so it comes back with fresh state.
    """
    if name is not None and (not name.startswith(".") or len(name) < 2):
        raise SkypyError(f"a child's name is a local name starting with '.': {name!r}")
    if shutdown is not None and shutdown < 0:
        raise SkypyError(f"a child's shutdown is seconds >= 0 or None, not {shutdown!r}")
    if crash_policy not in (None, "log", "exit"):
        raise SkypyError(f"a child's crash_policy is 'log', 'exit' or None, not {crash_policy!r}")
    return ChildSpec(service, args, name, Restart(restart), shutdown, crash_policy)


@attrs.frozen
class _Plan:
    """What a supervisor is started with; printed as its arguments in the console's `list`."""

    children: tuple[ChildSpec, ...]
    strategy: Strategy
    intensity: int
    period: float
    name: str | None

    def __str__(self) -> str:
        return f"{self.strategy} {self.intensity}/{self.period:g}s" + (f" {self.name}" if self.name else "")


def _plan(
    children: Iterable[ChildSpec], strategy: str, intensity: int, period: float, name: str | None
) -> _Plan:
    specs = tuple(children)
    try:
        chosen = Strategy(strategy)
    except ValueError:
        known = ", ".join(s.value for s in Strategy)
        raise SkypyError(f"supervisor strategy {strategy!r} is not one of {known}") from None
    if type(intensity) is not int or intensity < 0:
        raise SkypyError(f"supervisor intensity is a count of restarts >= 0, not {intensity!r}")
    if not period > 0:
        raise SkypyError(f"supervisor period is seconds > 0, not {period!r}")
    if chosen is Strategy.SIMPLE_ONE_FOR_ONE and len(specs) != 1:
        raise SkypyError(f"a simple_one_for_one supervisor has one child spec, the template, not {len(specs)}")
    labels = [spec.label for spec in specs]
    if chosen is not Strategy.SIMPLE_ONE_FOR_ONE and len(set(labels)) != len(labels):
        raise SkypyError(f"two children of one supervisor have the same id (name or service): {labels}")
    return _Plan(specs, chosen, intensity, period, name)


async def start(
    children: Iterable[ChildSpec],
    strategy: Strategy | str = Strategy.ONE_FOR_ONE,
    intensity: int = 3,
    period: float = 5.0,
    name: str | None = None,
) -> int:
    """Start a supervisor of `children` and return its handle once every child has started.

    CallError if it could not: a child kept failing to start past the
    restart intensity.
    """
    return await lifecycle.newservice(supervisor, _plan(children, strategy, intensity, period, name))


def nested(
    children: Iterable[ChildSpec],
    strategy: Strategy | str = Strategy.ONE_FOR_ONE,
    intensity: int = 3,
    period: float = 5.0,
    name: str | None = None,
) -> ChildSpec:
    """A child spec for a supervisor of `children`: trees nest. It is given all the time it needs to stop."""
    plan = _plan(children, strategy, intensity, period, name)
    return ChildSpec(supervisor, (plan,), name, Restart.PERMANENT, None)


async def children(sup: api.Address) -> list[ChildInfo]:
    """The children of supervisor `sup`, in start order."""
    listed: list[ChildInfo] = await _ask(sup, "children")
    return listed


async def start_child(sup: api.Address, *args: Any) -> int:
    """Add a child to `sup` and start it: a ChildSpec, or a simple_one_for_one pool's extra arguments."""
    handle: int = await _ask(sup, "start_child", *args)
    return handle


async def terminate_child(sup: api.Address, which: str | int) -> None:
    """Stop child `which` (its id or handle); it stays listed, not running, unless it is temporary or pooled."""
    await _ask(sup, "terminate_child", which)


async def restart_child(sup: api.Address, which: str | int) -> int:
    """Stop child `which` if it runs and start it again (not counted against the intensity); its new handle."""
    handle: int = await _ask(sup, "restart_child", which)
    return handle


def tree() -> dict[int, list[int]]:
    """This node's supervisors, each with the handles of its running children in start order."""
    return {handle: sup.running() for handle, sup in _registry().items()}


async def _ask(sup: api.Address, command: str, *args: Any) -> Any:
    ok, value = await api.call(sup, "lua", command, *args)
    if not ok:
        raise SkypyError(value)
    return value


def _registry() -> dict[int, _Supervisor]:
    """The node's running supervisors, by handle (for `tree`, the console and node shutdown)."""
    registry: dict[int, _Supervisor] = api.running().node.extension("supervisors", dict)
    return registry


class _Child:
    """A child of a running supervisor: its spec, and the instance running now, if any."""

    __slots__ = ("spec", "handle", "monitor")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.handle: int | None = None
        self.monitor: Monitor | None = None


class _Supervisor:
    """The state of one supervisor service, changed only inside its critical section."""

    def __init__(self, plan: _Plan) -> None:
        # Made by the supervisor's main, so `running` is the supervisor itself.
        self.service = api.running()
        self.plan = plan
        self.children = [] if plan.strategy is Strategy.SIMPLE_ONE_FOR_ONE else [_Child(s) for s in plan.children]
        self.restarts: deque[float] = deque()
        self.section = CriticalSection()
        self.stopping = False

    def running(self) -> list[int]:
        """The handles of the children running now, in start order."""
        return [c.handle for c in self.children if c.handle is not None]

    # --- starting and stopping one child ---------------------------------

    async def start(self, child: _Child) -> bool:
        """Start one instance of `child`; False (logged by the node) if its start failed."""
        spec = child.spec
        try:
            handle = await lifecycle.newservice(spec.service, *spec.args)
        except CallError:
            return False
        target = self.service.node.services.get(handle)
        if target is not None and spec.crash_policy is not None:
            target.crash_exits = spec.crash_policy == "exit"
        if spec.name is not None and target is not None:
            try:
                lifecycle.name(spec.name, handle)
            except SkypyError as exc:
                api.error(f"supervisor: child {spec.label} cannot take its name: {exc}")
                await lifecycle.kill(handle)
                return False
        child.handle = handle
        child.monitor = monitor(handle, self.ended)
        return True

    async def stop(self, child: _Child) -> None:
        """Stop `child`'s running instance, its stop hooks given `shutdown` seconds; it is not restarted."""
        handle = child.handle
        if handle is None:
            return
        if child.monitor is not None:
            demonitor(child.monitor)
        child.handle = child.monitor = None
        await stop(handle, stop_reason() or ExitReason.KILLED, child.spec.shutdown)

    # --- the strategy ----------------------------------------------------

    async def ended(self, handle: int, reason: str) -> None:
        """A child's monitor: restart what the strategy says, unless the child's restart type says no."""
        async with self.section:
            found = [c for c in self.children if c.handle == handle]
            if not found or self.stopping:
                return
            child = found[0]
            child.handle = child.monitor = None
            restart = child.spec.restart
            if restart is Restart.TEMPORARY or restart is Restart.TRANSIENT and reason == ExitReason.EXIT:
                if restart is Restart.TEMPORARY or self.plan.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
                    self.children.remove(child)
                return
            api.error(f"supervisor: child {child.spec.label} {address(handle)} ended ({reason}): restarting")
            await self.restart(child)

    async def restart(self, child: _Child) -> None:
        """Count a restart for `child` and apply the strategy; a start that fails counts as another."""
        failed: _Child | None = child
        while failed is not None:
            child = failed
            if not self.count_restart():
                await self.give_up(child.spec.label)
            if child.spec.restart is Restart.TEMPORARY:  # its start failed: it is not tried again
                self.children.remove(child)
                return
            targets = self.targets(child)
            for other in reversed(targets):
                if other is not child:
                    await self.stop(other)
            for other in targets:
                if other is not child and other.spec.restart is Restart.TEMPORARY:
                    self.children.remove(other)
            failed = None
            for other in targets:
                if other in self.children and other.handle is None and not await self.start(other):
                    failed = other
                    break

    def targets(self, child: _Child) -> list[_Child]:
        """The children to stop and start again, in start order, when `child` ended."""
        strategy = self.plan.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            return list(self.children)
        if strategy is Strategy.REST_FOR_ONE:
            return self.children[self.children.index(child):]
        return [child]

    def count_restart(self) -> bool:
        """Record a restart now; False when that makes more than `intensity` within `period`."""
        now = trio.current_time()
        while self.restarts and self.restarts[0] <= now - self.plan.period:
            self.restarts.popleft()
        self.restarts.append(now)
        return len(self.restarts) <= self.plan.intensity

    async def stop_all(self) -> None:
        """The supervisor's own stop hook: stop every child, the newest first, none restarted."""
        async with self.section:
            await self.stop_children()

    async def stop_children(self) -> None:
        """Stop every child, the newest first, and restart none from now on."""
        self.stopping = True
        for child in reversed(self.children):
            await self.stop(child)

    def orphaned(self) -> None:
        """The supervisor ended without stopping its children (killed, say): they end with it, as
        linked processes do in OTP, so a new supervisor's children can take their names."""
        # An exit hook runs in whichever service ended this one: name nobody through `running`.
        node = self.service.node
        for child in reversed(self.children):
            target = node.services.get(child.handle or 0)
            if target is not None:
                node.log(target.handle, f"KILL: its supervisor {address(self.service.handle)} ended")
                node.retire(target, ExitReason.KILLED)

    async def give_up(self, label: str) -> NoReturn:
        """Too many restarts: stop every child, the newest first, and end this supervisor abnormally."""
        plan = self.plan
        api.error(
            f"supervisor: more than {plan.intensity} restarts within {plan.period:g} s (the last for {label}):"
            " stopping every child, then itself"
        )
        await self.stop_children()
        self.service.node.retire(self.service, ExitReason.CRASH)
        raise ServiceExit

    # --- commands ----------------------------------------------------------

    COMMANDS = ("children", "start_child", "terminate_child", "restart_child")

    def find(self, which: str | int) -> _Child:
        """The child `which` names: its id, its handle, or its handle as ``":0000000a"``."""
        key = parse_address(which) if isinstance(which, str) and which.startswith(":") else which
        for child in self.children:
            if key == child.handle or key == child.spec.label:
                return child
        raise SkypyError(f"supervisor {address(self.service.handle)} has no child {which!r}")

    async def command(self, command: str, *args: Any) -> tuple[bool, Any]:
        """Run one command inside the section: (True, result), or (False, why) for the caller to raise.

        A refusal is an answer, not an exception, so a wrong id does not log
        a crash in the supervisor.
        """
        async with self.section:
            try:
                return True, await getattr(self, f"cmd_{command}")(*args)
            except SkypyError as exc:
                return False, str(exc)

    async def cmd_children(self) -> list[ChildInfo]:
        return [ChildInfo(c.spec.label, c.handle, c.spec.restart) for c in self.children]

    async def cmd_start_child(self, *args: Any) -> int:
        if self.plan.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            template = self.plan.children[0]
            spec = attrs.evolve(template, args=template.args + args)
        elif len(args) == 1 and isinstance(args[0], ChildSpec):
            spec = args[0]
            if any(c.spec.label == spec.label for c in self.children):
                raise SkypyError(f"supervisor {address(self.service.handle)} already has a child {spec.label!r}")
        else:
            raise SkypyError("start_child takes one ChildSpec (made by supervisor.child)")
        new = _Child(spec)
        if not await self.start(new):
            raise SkypyError(f"child {spec.label} failed to start (its error is in the log)")
        self.children.append(new)
        return new.handle or 0

    async def cmd_terminate_child(self, which: str | int) -> None:
        child = self.find(which)
        await self.stop(child)
        if child.spec.restart is Restart.TEMPORARY or self.plan.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            self.children.remove(child)

    async def cmd_restart_child(self, which: str | int) -> int:
        child = self.find(which)
        await self.stop(child)
        if not await self.start(child):
            raise SkypyError(f"child {child.spec.label} failed to start (its error is in the log)")
        return child.handle or 0


async def supervisor(plan: _Plan) -> None:
    """The supervisor service's main: start the children in order, then watch them."""
    me = _Supervisor(plan)
    handle = me.service.handle
    registry = _registry()
    registry[handle] = me
    lifecycle.on_exit(lambda: registry.pop(handle, None))
    lifecycle.on_exit(me.orphaned)
    if plan.name is not None:
        lifecycle.register(plan.name)
    api.dispatch_commands({name: partial(me.command, name) for name in _Supervisor.COMMANDS})
    on_stop(me.stop_all)
    async with me.section:
        for child in list(me.children):
            # A failed start is a restart: with one_for_all it may have started the later children too.
            if child in me.children and child.handle is None and not await me.start(child):
                await me.restart(child)
