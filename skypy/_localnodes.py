"""Several cluster nodes of one config on this machine, one process each: a node per core.

A node is one process on one core. ``skypy run CONFIG`` with ``nodes =
["front", "back"]`` in the config (or ``--node front --node back``) runs
``skypy run CONFIG --node NAME`` for each, relays their log lines prefixed
with the node's name, and stops them all on Ctrl-C or SIGTERM, or as soon
as one of them ends by itself.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import trio

# How long the nodes get to stop after SIGTERM before they are killed.
STOP_GRACE = 10.0


async def run_nodes(config: Path, names: list[str]) -> int:
    """Run node `name` of `config` in a child process for each of `names`; the exit status.

    0 when stopped by a signal and every node stopped cleanly; else the
    status of the first node that ended by itself (1 if that was 0).
    """
    ended: list[int] = []
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            processes = []
            for name in names:
                # A session of its own, so Ctrl-C in a terminal reaches the
                # children once, through us, not twice.
                process = await trio.lowlevel.open_process(
                    [sys.executable, "-m", "skypy.cli", "run", str(config.resolve()), "--node", name],
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
                processes.append(process)
                nursery.start_soon(_relay, name, process, ended, stop)

            async def on_signal() -> None:
                async for _ in signals:
                    stop.set()
                    return

            nursery.start_soon(on_signal)
            await stop.wait()
            await _stop_all(processes)
            nursery.cancel_scope.cancel()
    if ended:
        return ended[0] or 1
    return max((p.returncode or 0 for p in processes), default=0)


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


async def _stop_all(processes: list[trio.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    with trio.move_on_after(STOP_GRACE):
        for process in processes:
            await process.wait()
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()
