"""Several cluster nodes of one config on this machine, one process each: a node per core.

A node is one process on one core. ``skypy run CONFIG`` with ``nodes =
["front", "back"]`` in the config (or ``--node front --node back``) runs
``skypy run CONFIG --node NAME`` for each, relays their log lines prefixed
with the node's name, and stops them all on Ctrl-C, SIGTERM or SIGHUP (the
terminal closing), or as soon as one of them ends by itself. The children
run in sessions of their own, so that Ctrl-C reaches them once, through us;
they watch a pipe only we hold open, so that they stop when we are gone,
however we died (SIGKILL included).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

# How long the nodes get to stop after SIGTERM before they are killed, unless
# told: a node forces its own stop after cli.FORCE_AFTER seconds (the
# config's watchdog.stop), so this is only reached by a node that cannot run
# at all (stopped, swapped out).
STOP_GRACE = 4.0
# The variable naming a child's end of the pipe (cli.PARENT_FD; not imported:
# cli imports this module).
PARENT_FD = "SKYPY_PARENT_FD"


async def run_nodes(
    config: Path,
    names: list[str],
    settings: list[str] | None = None,
    stop_grace: float = STOP_GRACE,
    watch: bool = False,
) -> int:
    """Run node `name` of `config` in a child process for each of `names`; the exit status.

    `settings` are ``KEY=VALUE`` strings passed to each as ``--set``, and
    `watch` passes ``--watch`` (each node reloads its own services); a node
    still running `stop_grace` seconds after SIGTERM is killed. 0 when
    stopped by a signal and every node stopped cleanly; else the status of
    the first node that ended by itself (1 if that was 0), or 1 if a node
    had to be killed.
    """
    ended: list[int] = []
    stop = trio.Event()
    sets = [arg for setting in settings or [] for arg in ("--set", setting)] + (["--watch"] if watch else [])
    watched, held = os.pipe()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            processes = []
            try:
                for name in names:
                    process = await trio.lowlevel.open_process(
                        [sys.executable, "-m", "skypy", "run", str(config.resolve()), "--node", name, *sets],
                        stderr=subprocess.PIPE,
                        start_new_session=True,
                        pass_fds=(watched,),
                        env={**os.environ, PARENT_FD: str(watched)},
                    )
                    processes.append((name, process))
                    nursery.start_soon(_relay, name, process, ended, stop)
            finally:
                os.close(watched)

            async def on_signal() -> None:
                async for _ in signals:
                    stop.set()
                    return

            nursery.start_soon(on_signal)
            await stop.wait()
            killed = await _stop_all(processes, stop_grace)
            nursery.cancel_scope.cancel()
    # `held` stays open until we exit: the children see the pipe close then.
    if killed:
        return 1
    if ended:
        return ended[0] or 1
    return max((p.returncode or 0 for _, p in processes), default=0)


async def _relay(name: str, process: trio.Process, ended: list[int], stop: trio.Event) -> None:
    """Copy a node's log lines to our stderr with its name in front; note it if it ends first."""
    assert process.stderr is not None
    pending = b""
    async for chunk in process.stderr:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            print(f"{name} {line.decode(errors='replace')}", file=sys.stderr, flush=True)
    status = await process.wait()
    if not stop.is_set():
        print(f"skypy: node {name} ended with status {status}; stopping the others", file=sys.stderr, flush=True)
        ended.append(status)
        stop.set()


async def _stop_all(processes: list[tuple[str, trio.Process]], grace: float) -> list[str]:
    """SIGTERM each node, SIGKILL those still running `grace` seconds later; the names of those."""
    for _, process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    with trio.move_on_after(grace):
        for _, process in processes:
            await process.wait()
    killed = []
    for name, process in processes:
        if process.returncode is None:
            print(f"skypy: node {name} did not stop within {grace:g} s of SIGTERM; killed", file=sys.stderr, flush=True)
            process.kill()
            await process.wait()
            killed.append(name)
    return killed
