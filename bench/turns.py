"""Turns of a server under a load client in its own process, with the server's CPU per operation.

What bench/http.py and bench/websocket.py share: each runs its server and a
baseline server in turns against the same client script, and reports the
median rate of each and the server process's CPU time per operation
(user + system over the whole turn, warm-up included).
"""

from __future__ import annotations

import functools
import json
import resource
import statistics
import sys
from typing import Any, Awaitable, Callable

import trio

from messages import figure  # bench/messages.py: one way to make figures

# A server runs the client it is given against its port and returns what the
# client printed: {"rate": operations/s, "total": operations, warm-up included}.
Server = Callable[[Callable[[int], Awaitable[dict[str, float]]]], Awaitable[dict[str, float]]]


async def run_client(script: str, args: list[str], port: int) -> dict[str, float]:
    """Run ``script --client PORT ARGS...`` and read the JSON object it prints."""
    proc = await trio.run_process([sys.executable, script, "--client", str(port), *args], capture_stdout=True)
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def one_turn(server: Server, script: str, client_args: list[str]) -> tuple[float, float]:
    """Run `server` under the load once: (operations/s, server CPU seconds per operation)."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = trio.run(server, functools.partial(run_client, script, client_args))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result["rate"], cpu / result["total"]


def measure(ours: Server, baseline: Server, script: str, client_args: list[str], repeats: int, unit: str) -> dict[str, Any]:
    """`repeats` turns each, taking turns: the figure of the medians, with ``cpu_us`` and ``baseline_cpu_us``."""
    values, bases, cpus, base_cpus = [], [], [], []
    for _ in range(repeats):
        rate, cpu = one_turn(ours, script, client_args)
        values.append(rate)
        cpus.append(cpu)
        rate, cpu = one_turn(baseline, script, client_args)
        bases.append(rate)
        base_cpus.append(cpu)
    result = figure(values, bases, unit)
    result["cpu_us"] = round(statistics.median(cpus) * 1e6, 1)
    result["baseline_cpu_us"] = round(statistics.median(base_cpus) * 1e6, 1)
    return result


def print_cpu(results: dict[str, dict[str, Any]], per: str) -> None:
    """One line per figure: the server's CPU per operation, ours and the baseline's."""
    for name, r in results.items():
        print(f"{name:16} server CPU {r['cpu_us']} us/{per}, baseline {r['baseline_cpu_us']} us/{per}")
