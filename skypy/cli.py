"""The ``skypy`` command: ``skypy run [CONFIG] [--node NAME]... [--set KEY=VALUE]...`` runs nodes.

A node stops on Ctrl-C or SIGTERM at any moment, start-up included: the
signal cancels start-up, or ends the run and lets every service exit. A
handler stuck in ``while True: pass`` holds the node's only thread, so the
node cannot act on the signal; a second Ctrl-C or SIGTERM, or the node not
having stopped within `FORCE_AFTER` seconds of its shutdown timeout, ends the process at once (as a
second Ctrl-C does in most Python programs). The signal handlers are
Python's own, not trio's signal receiver: they run between two bytecodes of
whatever the node's thread is doing, stuck handler included.

Exit status: 0 for a stop asked by a signal, 1 when start-up failed (one
line says what failed and why), 2 for a bad config or command line, and
128 + the signal's number when the stop had to be forced.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Callable

import attrs
import trio

from . import __version__, _localnodes as localnodes
from ._core import config
from .embed import SHUTDOWN_TIMEOUT, RunningNode, open_node
from .errors import ConfigError, StartError
from .ops.watch import watcher

__all__ = ["EXIT_BAD_CONFIG", "EXIT_START_FAILED", "FORCE_AFTER", "PARENT_FD", "main", "run_node"]

EXIT_START_FAILED = 1
EXIT_BAD_CONFIG = 2
# Seconds a node gets to stop after Ctrl-C or SIGTERM, beyond its services'
# `[shutdown] timeout`, before the process ends anyway, unless the config's
# `watchdog.stop` says otherwise.
FORCE_AFTER = 3.0
# The command owns its process, so unless the config has a [gc] table it
# collects cyclic garbage less often than Python would and freezes what
# start-up made: with a thousand connections that cut the CPU per request
# of bench/server.py by a third.
RUN_GC = {"threshold": 50_000, "freeze": True}
# Set by a multi-node run for each child: the read end of a pipe whose write
# end only the parent holds. The pipe reads as closed once the parent is
# gone, however it died (SIGKILL included), and the node then stops.
PARENT_FD = "SKYPY_PARENT_FD"
_STOPS = (signal.SIGINT, signal.SIGTERM)


class _Stopper:
    """What the first stop request (a signal, the parent gone) does, and what a second one does."""

    def __init__(self, token: trio.lowlevel.TrioToken, force_after: float) -> None:
        self._token = token
        self._force_after = force_after
        self._stop: Callable[[], object] | None = None
        self._status = 0
        self._requested = False
        self._timer: threading.Timer | None = None

    def set_action(self, stop: Callable[[], object]) -> None:
        """Call `stop` (in the trio thread) on the first request from now on."""
        self._stop = stop

    def request(self, why: str, status: int) -> None:
        """Ask the node to stop; if one was asked already, end the process now."""
        # Marked first thing: a second signal may run this handler again
        # inside the first call, between any two of its bytecodes.
        if self._requested:
            self.force(f"{why} again")
            return
        self._requested = True
        self._status = status
        _say(f"skypy: {why}: stopping (again to stop at once)")
        self._timer = threading.Timer(
            self._force_after, self.force, [f"the node did not stop within {self._force_after:g} s"]
        )
        self._timer.daemon = True
        self._timer.start()
        if self._stop is not None:
            try:
                self._token.run_sync_soon(self._stop)
            except trio.RunFinishedError:
                pass  # the node has stopped already; the timer ends a slow exit

    def force(self, why: str) -> None:
        """End the process at once: a handler holds the node, which cannot stop by itself."""
        _say(f"skypy: {why}: stopping at once")
        os._exit(self._status)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.request(signal.Signals(signum).name, 128 + signum)

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _say(line: str) -> None:
    """Write a line to stderr from a signal handler or a thread: unbuffered, and never raising
    (stderr may be a pipe whose reader, a parent that died, is gone)."""
    try:
        os.write(2, f"{line}\n".encode())
    except OSError:
        pass


def _watch_parent(fd: int, stopper: _Stopper) -> None:
    """In a thread: wait until the parent's end of the pipe closes, then stop the node."""
    while os.read(fd, 1):
        pass
    stopper.request("the parent process is gone", 128 + signal.SIGTERM)


def stop_within(settings: config.Config) -> float:
    """Seconds a node of `settings` gets to stop after a stop signal before it is forced to:
    `watchdog.stop`, else its services' `[shutdown] timeout` and FORCE_AFTER more."""
    if "stop" in settings.watchdog:
        return float(settings.watchdog["stop"])
    return float(settings.shutdown.get("timeout", SHUTDOWN_TIMEOUT)) + FORCE_AFTER


async def run_node(settings: config.Config, watch: bool = False) -> int:
    """Run a node until SIGINT or SIGTERM (SIGHUP asks the logger to reopen its file); the exit status.

    Signals are handled from before start-up begins, so a start service that
    never returns can be stopped too. Must run in the main thread.
    """
    if not settings.gc:
        settings = attrs.evolve(settings, gc=RUN_GC)
    stopper = _Stopper(trio.lowlevel.current_trio_token(), stop_within(settings))
    previous = {signum: signal.signal(signum, stopper.on_signal) for signum in _STOPS}
    if PARENT_FD in os.environ:
        fd = int(os.environ.pop(PARENT_FD))
        threading.Thread(target=_watch_parent, args=(fd, stopper), daemon=True, name="skypy parent").start()
    try:
        with trio.CancelScope() as scope, trio.open_signal_receiver(signal.SIGHUP) as hangups:
            stopper.set_action(scope.cancel)  # during start-up: cancel it
            try:
                async with open_node(settings) as node:
                    if watch:
                        await node.newservice(watcher)
                    stopped = trio.Event()
                    stopper.set_action(stopped.set)  # once started: leave the block, every service exits
                    if settings.start is None:
                        node.node.log(node.handle, "no `start` service in the config: nothing was started")
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_reopen_log_on_sighup, node, hangups)
                        await stopped.wait()
                        nursery.cancel_scope.cancel()
            except StartError as exc:
                print(f"skypy: {exc}", file=sys.stderr, flush=True)
                return EXIT_START_FAILED
        return 0
    finally:
        stopper.cancel_timer()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


async def _reopen_log_on_sighup(node: RunningNode, hangups: Any) -> None:
    async for _ in hangups:
        node.send(".logger", "system", "reopen")
        node.node.log(node.handle, "SIGHUP: log file reopened")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skypy", description="Run skypy nodes: skynet's actor model on trio.")
    parser.add_argument("--version", action="version", version=f"skypy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run a node from a TOML config (default: the shipped example)")
    run.add_argument("config", nargs="?", type=Path, help=f"config file (default: {config.default_config_path()})")
    run.add_argument(
        "--node", action="append", metavar="NAME",
        help="run cluster node NAME of the config; several --node run one process each "
        "(default: the config's `nodes`)",
    )
    run.add_argument(
        "--watch", action="store_true",
        help="reload each service in place when its file changes (on every node; needs pip install 'skypy[watch]')",
    )
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
        help="set a config key over the file's, such as console.port=0 or env.greeting='hi' "
        "(a dotted key names a key in a table; VALUE is TOML, a bare word a string)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``skypy`` command with `argv` (default: the process's); the exit status."""
    args = _parser().parse_args(argv)
    path = args.config or config.default_config_path()
    try:
        loaded = config.load(path)
        overrides = config.assignments(args.settings)
        names = args.node or overrides.get("nodes") or loaded.nodes
        # Each node is checked as it will run, before any starts: its own
        # table over the shared keys, then --set over both.
        # The parent of several nodes waits as long as the slowest may take to stop.
        stop_grace = 0.0
        for name in names or [None]:
            settings = loaded if name is None else config.select_node(loaded, name)
            if overrides:
                settings = config.build("--set", overrides, Path.cwd(), base=settings)
            stop_grace = max(stop_grace, stop_within(settings) + 1.0)
    except ConfigError as exc:
        print(f"skypy: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if len(names) > 1:
        return trio.run(localnodes.run_nodes, path, names, args.settings, stop_grace, args.watch)
    return trio.run(run_node, settings, args.watch)


if __name__ == "__main__":
    sys.exit(main())
