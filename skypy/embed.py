"""Running a node inside a trio program: ``async with skypy.open_node() as node``."""

from __future__ import annotations

import gc
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import trio

from . import cluster, datacenter, log, supervisor
from ._api import lifecycle, messages as api, stopping, tracing
from ._core import config as config_module, endless
from ._core.config import Config
from ._core.current import current
from ._core.message import PTYPE_DEBUG, PTYPE_TRACE
from ._core.monitors import ExitReason
from ._core.node import CrashHook, LogHook, Node, new_node
from ._core.service import Service
from .errors import CallError, StartError
from .ops import debug, otlp

__all__ = ["RunningNode", "open_node"]

class RunningNode:
    """The handle an embedding program holds: the node's API, acting as the block's own service."""

    def __init__(self, node: Node, host: Service) -> None:
        self.node = node
        self.host = host

    @property
    def handle(self) -> int:
        """The handle of the service the `open_node` block runs as."""
        return self.host.handle

    def add_log_hook(self, hook: LogHook) -> None:
        """Also pass every log line to ``hook(source, text)``, as it is logged."""
        self.node.log_hooks.append(hook)

    def add_crash_hook(self, hook: CrashHook) -> None:
        """Also call ``hook(service, what, exception)`` for every exception a service does not handle."""
        self.node.crash_hooks.append(hook)

    async def newservice(self, service: str | Callable[..., Any], *args: Any) -> int:
        """`skypy.newservice` from the program: start a service, return its handle once its main returned."""
        with self._as_host():
            return await lifecycle.newservice(service, *args)

    async def uniqueservice(self, service: str, *args: Any) -> int:
        """`skypy.uniqueservice` from the program: the one service of this name, started on first use."""
        with self._as_host():
            return await lifecycle.uniqueservice(service, *args)

    async def queryservice(self, service: str) -> int:
        """`skypy.queryservice` from the program: the unique service's handle, once it has started."""
        with self._as_host():
            return await lifecycle.queryservice(service)

    async def call(self, addr: api.Address, ptype: str | int, *args: Any, timeout: float | None = None) -> Any:
        """`skypy.call` from the program, from any of its tasks: the answer, or CallError."""
        with self._as_host():
            return await api.call(addr, ptype, *args, timeout=timeout)

    def send(self, addr: api.Address, ptype: str | int, *args: Any) -> None:
        """`skypy.send` from the program: never blocks, never raises for a dead address."""
        with self._as_host():
            api.send(addr, ptype, *args)

    async def kill(self, addr: api.Address, *, graceful: bool = False, timeout: float | None = 5.0) -> None:
        """`skypy.kill` from the program: end the service at `addr` (with `graceful`, after its
        stop hooks, for at most `timeout` seconds) and wait until it has ended."""
        with self._as_host():
            await lifecycle.kill(addr, graceful=graceful, timeout=timeout)

    def localname(self, name: str) -> int | None:
        """The handle named `name` (``.name``) on this node, or None."""
        return self.node.names.get(name)

    def _as_host(self) -> _HostContext:
        return _HostContext(self.host)


class _HostContext:
    """Makes the block's service current, for calls made from any task of the program."""

    __slots__ = ("_host", "_token")

    def __init__(self, host: Service) -> None:
        self._host = host

    def __enter__(self) -> None:
        self._token = current.set(self._host)

    def __exit__(self, *_: object) -> None:
        current.reset(self._token)


def _configure(config: Config | str | Path | None, overrides: dict[str, Any]) -> Config:
    if config is None:
        base = Config()
    elif isinstance(config, Config):
        base = config
    else:
        base = config_module.load(config)
    if not overrides:
        return base
    return config_module.build("open_node()", overrides, base=base)


@asynccontextmanager
async def open_node(
    config: Config | str | Path | None = None,
    *,
    on_start: Callable[[RunningNode], None] | None = None,
    **overrides: Any,
) -> AsyncIterator[RunningNode]:
    """Run a node for the duration of the block, which acts as one of its services.

    `config` is a Config, a TOML file, or None for the defaults; keyword
    overrides use the config's key names. The logger starts first, then the
    debug console if the config has a ``[console]`` table, the web console if
    it has a ``[web]`` table, then the cluster
    listener if it names this `node`, then the config's `start` service; if
    one of them fails, StartError names it and why; the config's
    ``[[supervise]]`` trees start just before `start`. Leaving the block
    stops every service, the newest first, each supervisor stopping its
    children, their stop hooks given ``[shutdown] timeout`` seconds in all;
    the log is flushed last. `on_start`, if given, is called before any of
    them starts (to add log or crash hooks).
    """
    settings = _configure(config, overrides)
    log.install_record_factory()
    node = new_node(settings)
    node.default_handlers[PTYPE_DEBUG] = debug.HANDLER
    node.default_handlers[PTYPE_TRACE] = tracing.HANDLER
    # Kept outside the nursery so a failure in the block comes out as itself,
    # not wrapped in an ExceptionGroup by the nursery.
    failure: BaseException | None = None
    collector = _Collector(settings.gc)
    collector.apply()
    # Only a node that asks for it imports OpenTelemetry.
    export = otlp.SpanExport(node, settings.trace["otlp"]) if "otlp" in settings.trace else None
    if export is not None:
        node.extensions["otlp"] = export
    try:
        async with trio.open_nursery() as nursery:
            node.nursery = nursery
            node.started_at = trio.current_time()
            nursery.start_soon(node.timers.run, name="skypy timers")
            await nursery.start(endless.watch, node)
            host = Service(node, node.new_handle(), "host")
            node.services[host.handle] = host
            await nursery.start(node.guard, host)
            token = current.set(host)
            running = RunningNode(node, host)
            try:
                if on_start is not None:
                    on_start(running)
                await _start(node, settings)
                collector.started()
                yield running
            except BaseException as exc:
                failure = exc
            finally:
                # Not shielded: when the block is cancelled from outside, the
                # logger (and this block's own service) are being cancelled too,
                # and a shielded wait for the stop hooks or the flush would never end.
                try:
                    await _shut_down(node, settings.shutdown.get("timeout", SHUTDOWN_TIMEOUT))
                finally:
                    current.reset(token)
                    node.close()
    finally:
        collector.restore()
        if export is not None:
            await _stop_export(export)
    if failure is not None:
        raise failure


async def _stop_export(export: otlp.SpanExport) -> None:
    """Send the spans left, from a thread (the collector may be served by this very trio run), for 5 s at most."""
    with trio.CancelScope(shield=True), trio.move_on_after(5):
        await trio.to_thread.run_sync(export.shutdown, abandon_on_cancel=True)


class _Collector:
    """The config's ``[gc]`` policy for this process while the node runs; Python's own after.

    Process-wide, as Python has one cyclic collector. A node holds many
    long-lived objects (services, their namespaces, tasks and tables), and
    each full collection walks them all: with a thousand connections' agents
    that came to a third of the CPU per request (bench/server.py). So
    `threshold` makes collections rarer, and `freeze` moves what start-up
    made out of their way (`gc.freeze`); the price is that a frozen cycle
    is never collected (a boot-time service's old module after a reload).
    """

    def __init__(self, policy: dict[str, Any]) -> None:
        self.policy = policy
        self.old = gc.get_threshold()

    def apply(self) -> None:
        """Collect less often, if the policy says so."""
        threshold = self.policy.get("threshold", 0)
        if threshold:
            gc.set_threshold(threshold, *self.old[1:])

    def started(self) -> None:
        """Start-up is over: freeze what it made, if the policy says so."""
        if self.policy.get("freeze"):
            gc.freeze()

    def restore(self) -> None:
        """The node has ended: Python's collector as it was before."""
        if self.policy:
            gc.set_threshold(*self.old)
        if self.policy.get("freeze"):
            gc.unfreeze()


async def _start(node: Node, settings: Config) -> None:
    """Start the logger, the console, the cluster port (and the datacenter, on the node
    that holds it) and the `start` service, in that order; StartError naming the first that failed."""
    what = f"logger service {settings.logservice!r}"
    try:
        await lifecycle.newservice(settings.logservice, *([str(settings.logger)] if settings.logger else []))
        if settings.console is not None:
            console = {"host": "127.0.0.1", "port": 0, **settings.console}
            what = f"debug console on {console['host']}:{console['port']}"
            # The greeting delay is passed only when configured: the service keeps
            # the default, and `list` shows the console as an operator would start it.
            delay = [console["greeting_delay"]] if "greeting_delay" in console else []
            await lifecycle.newservice("debug_console", console["host"], console["port"], *delay)
        if settings.web is not None:
            web = {"host": "127.0.0.1", "port": 0, **settings.web}
            what = f"web console on {web['host']}:{web['port']}"
            await lifecycle.newservice("web_console", web["host"], web["port"])
        if settings.node is not None:
            # This process is cluster node `node`: serve the other nodes before
            # `start` runs, and tell services which node they are on.
            what = f"cluster port of node {settings.node!r}"
            node.env.setdefault("node", settings.node)
            await cluster.open(settings.node)
            if settings.datacenter.get("node") == settings.node:
                # The node holding the cluster's datacenter serves it from the start.
                what = f"datacenter of node {settings.node!r}"
                await datacenter.open()
        for i, tree in enumerate(settings.supervise):
            what = f"supervisor [[supervise]] #{i + 1}"
            await _supervise(tree)
        if settings.start is not None:
            what = f"start service {settings.start!r}"
            await lifecycle.newservice(settings.start, *settings.start_args)
    except CallError as exc:
        raise StartError(f"{what} failed: {_root_cause(exc)}") from exc


# The wrapping each call level adds to the failure it passes on.
_WRAPPED = re.compile(r"^(?:(?:CallError: )?call to :[0-9a-f]{8} failed: )+")


def _root_cause(exc: CallError) -> str:
    """What went wrong at the bottom of a chain of calls: ``SocketError: listen on …``."""
    return _WRAPPED.sub("", str(exc))


async def _supervise(tree: dict[str, Any]) -> int:
    """Start the supervisor a config's ``[[supervise]]`` table describes."""
    children = [
        supervisor.child(
            table["service"],
            *table.get("args", []),
            name=table.get("name"),
            restart=table.get("restart", "permanent"),
            shutdown=None if table.get("shutdown") == "infinity" else table.get("shutdown", 5.0),
            crash_policy=table.get("crash_policy"),
        )
        for table in tree["children"]
    ]
    options = {key: tree[key] for key in ("strategy", "intensity", "period", "name") if key in tree}
    return await supervisor.start(children, **options)


# Seconds the services get to stop when the node stops, unless [shutdown] timeout says otherwise.
SHUTDOWN_TIMEOUT = 10.0


async def _shut_down(node: Node, timeout: float) -> None:
    """Stop every service but the logger, the newest first, then wait until the logger has written what it has.

    A service with stop hooks (a supervisor among them) is stopped
    gracefully and waited for; a supervisor's children are left to it,
    which stops them newest first. Whatever still runs after `timeout`
    seconds is killed.
    """
    logger = node.names.get(".logger")
    host = current.get()
    supervised = {child for children in supervisor.tree().values() for child in children}
    with trio.move_on_after(timeout):
        for svc in sorted(node.services.values(), key=lambda s: -s.handle):
            if svc.dead or svc.handle == logger or svc is host or svc.handle in supervised:
                continue
            if stopping.has_stop_hooks(svc):
                await stopping.stop(svc.handle, ExitReason.NODE_STOPPING, None)
            else:
                node.retire(svc, ExitReason.NODE_STOPPING)
    for svc in sorted(node.services.values(), key=lambda s: -s.handle):
        if svc.handle != logger and svc is not host:
            node.retire(svc, ExitReason.NODE_STOPPING)
    if logger is not None and logger in node.services:
        try:
            await api.call(logger, "system", "flush")
        except CallError:
            pass  # a replacement logger need not know "flush"; its lines are then lost
