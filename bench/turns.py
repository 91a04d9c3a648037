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
import selectors
import socket
import statistics
import sys
import time
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


def ping_pong(
    socks: list[socket.socket], message: bytes, answer_size: Callable[[bytes], int | None], duration: float
) -> dict[str, float]:
    """The load client's loop: each connection sends `message`, and again each time a whole
    answer has come back; answers/s after a warm-up, and the total sent.

    ``answer_size(received)`` is one answer's size in bytes, once the bytes
    received so far tell it (every answer has the same size), else None.
    """
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, [b""])
        sock.send(message)
    warmup = min(1.0, duration / 5)
    size: int | None = None
    done = total = 0
    now = time.perf_counter()
    begin, end = now + warmup, now + warmup + duration
    counted_from = None
    while now < end:
        if counted_from is None and now >= begin:
            counted_from, done = now, 0
        for key, _ in selector.select(timeout=1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            data = sock.recv(65536)
            if not data:
                raise SystemExit("the server closed a connection")
            received = key.data[0] + data
            if size is None:
                size = answer_size(received)
            while size and len(received) >= size:
                received = received[size:]
                done += 1
                total += 1
                sock.send(message)
            key.data[0] = received
        now = time.perf_counter()
    for sock in socks:
        sock.close()
    return {"rate": done / (now - (counted_from or begin)), "total": total + len(socks)}


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
