"""Message throughput of one node on one core, against raw trio doing the same work.

    python bench/messages.py [--json] [--count N] [--metrics]

Figures: `send` (one-way messages/s between two services, plain-def handler
that counts), `call` (sequential round trips/s), `call_concurrent` (round
trips/s with 10 concurrent callers), `call_forks` (round trips/s of 100
coroutines forked by one service, each calling in sequence). Baselines,
measured in the same run: an unbounded memory channel (producer `await
send()`, consumer `async for`) for `send`; a ping-pong over two unbuffered
memory channels for `call`, with 10 pingers for `call_concurrent` and 100
for `call_forks`. With `--metrics` every node serves its web page and
/metrics (``[web]``), so calls are timed and the page samples the node: the
cost of metrics, measured against a run without. Run that one as ``python -P
bench/messages.py --metrics``: this folder's http.py would otherwise shadow
the standard library's http, which prometheus-client imports.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import time
from typing import Any, Awaitable, Callable, Iterable

import trio

import skypy

CONCURRENT_CALLERS = 10
FORKS = 100


async def skypy_send(count: int, **node_args: Any) -> float:
    async with skypy.open_node(**node_args) as node:
        done = trio.Event()

        async def counter() -> None:
            received = 0

            def count_one(session: int, source: int, n: int) -> None:
                nonlocal received
                received += 1
                if received == count:
                    done.set()

            skypy.dispatch("lua", count_one)

        async def producer(target: int) -> None:
            for n in range(count):
                skypy.send(target, "lua", n)

        target = await node.newservice(counter)
        start = time.perf_counter()
        await node.newservice(producer, target)
        await done.wait()
        return count / (time.perf_counter() - start)


async def _echo_service() -> None:
    skypy.dispatch("lua", lambda session, source, x: skypy.ret(x))


async def _call_once(call: Callable[[int], Awaitable[Any]]) -> None:
    async def once(session: int, source: int) -> None:
        skypy.ret(await call(0))

    skypy.dispatch("lua", once)


async def skypy_call(count: int, callers: int, call: Callable[[int], Awaitable[Any]] | None = None, **node_args: Any) -> float:
    """Round trips/s of `callers` services each calling in a loop: ``call(n)``, by
    default `skypy.call` to an echo service (bench/cluster.py passes a remote one)."""
    async with skypy.open_node(**node_args) as node:
        if call is None:
            call = functools.partial(skypy.call, await node.newservice(_echo_service), "lua")
        await node.call(await node.newservice(_call_once, call), "lua")  # e.g. dial before the clock starts
        each = count // callers

        async def caller_service() -> None:
            async def run(session: int, source: int) -> None:
                for n in range(each):
                    await call(n)
                skypy.ret()

            skypy.dispatch("lua", run)

        callers_ = [await node.newservice(caller_service) for _ in range(callers)]
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for addr in callers_:
                nursery.start_soon(node.call, addr, "lua")
        return each * callers / (time.perf_counter() - start)


async def skypy_call_forks(count: int, forks: int, **node_args: Any) -> float:
    """Round trips/s of one service whose `forks` coroutines each call an echo service in a loop:
    the shape of an agent forking calls to a database service, many coroutines waiting at once."""
    async with skypy.open_node(**node_args) as node:
        echo = await node.newservice(_echo_service)
        each = count // forks

        async def forking_service() -> None:
            async def run(session: int, source: int) -> None:
                done = 0
                reply = skypy.response()

                async def calls() -> None:
                    nonlocal done
                    for n in range(each):
                        await skypy.call(echo, "lua", n)
                    done += 1
                    if done == forks:
                        reply()

                for _ in range(forks):
                    skypy.fork(calls)

            skypy.dispatch("lua", run)

        caller = await node.newservice(forking_service)
        start = time.perf_counter()
        await node.call(caller, "lua")
        return each * forks / (time.perf_counter() - start)


async def trio_send(count: int) -> float:
    send, receive = trio.open_memory_channel(math.inf)
    received = 0

    async def consumer() -> None:
        nonlocal received
        async for _ in receive:
            received += 1
            if received == count:
                return

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        for n in range(count):
            await send.send(n)
    return count / (time.perf_counter() - start)


async def trio_call(count: int, callers: int) -> float:
    each = count // callers

    async def pinger(
        requests: trio.MemorySendChannel, reply_to: trio.MemoryReceiveChannel, reply_send: trio.MemorySendChannel
    ) -> None:
        for n in range(each):
            await requests.send((n, reply_send))
            await reply_to.receive()

    async def ponger(requests: trio.MemoryReceiveChannel) -> None:
        async for n, reply in requests:
            await reply.send(n)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        request_send, request_receive = trio.open_memory_channel(0)
        nursery.start_soon(ponger, request_receive)
        async with trio.open_nursery() as pingers:
            for _ in range(callers):
                reply_send, reply_receive = trio.open_memory_channel(0)
                pingers.start_soon(pinger, request_send, reply_receive, reply_send)
        nursery.cancel_scope.cancel()
    return each * callers / (time.perf_counter() - start)


# name -> (ours(n, **node_args), baseline(n), unit, divisor of the count)
FIGURES = {
    "send": (lambda n, **o: skypy_send(n, **o), lambda n: trio_send(n), "messages/s", 1),
    "call": (lambda n, **o: skypy_call(n, 1, **o), lambda n: trio_call(n, 1), "round trips/s", 4),
    "call_concurrent": (
        lambda n, **o: skypy_call(n, CONCURRENT_CALLERS, **o),
        lambda n: trio_call(n, CONCURRENT_CALLERS),
        "round trips/s",
        4,
    ),
    "call_forks": (
        lambda n, **o: skypy_call_forks(n, FORKS, **o),
        lambda n: trio_call(n, FORKS),
        "round trips/s",
        4,
    ),
}


def measure(count: int, repeats: int, **node_args: Any) -> dict[str, dict[str, object]]:
    """Median of `repeats` runs of each figure and its baseline, alternating the two."""
    results = {}
    for name, (ours, baseline, unit, divisor) in FIGURES.items():
        n = count // divisor
        ours_runs, base_runs = [], []
        for _ in range(repeats):
            ours_runs.append(trio.run(functools.partial(ours, n, **node_args)))
            base_runs.append(trio.run(baseline, n))
        results[name] = figure(ours_runs, base_runs, unit)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--count", type=int, default=200_000, help="messages per send run (calls: a quarter)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--metrics", action="store_true", help="every node serves its web page and /metrics")
    args = parser.parse_args()
    node_args = {"web": {"port": 0}} if args.metrics else {}
    report(measure(args.count, args.repeats, **node_args), args.json)


def figure(values: Iterable[float], baselines: Iterable[float], unit: str) -> dict[str, Any]:
    """One figure from its runs: the median of ours, the median of the baseline's, and their ratio."""
    value, base = statistics.median(values), statistics.median(baselines)
    return {"value": round(value), "unit": unit, "baseline": round(base), "ratio": round(value / base, 2)}


def report(results: dict[str, dict[str, Any]], as_json: bool) -> None:
    """Print the figures as one JSON object, or one line each."""
    if as_json:
        print(json.dumps(results))
        return
    for name, r in results.items():
        print(f"{name:16} {r['value']:>10,} {r['unit']:14} baseline {r['baseline']:>10,}  ratio {r['ratio']:.2f}x")


if __name__ == "__main__":
    main()
