"""Cross-node calls and multi-core scaling of skypy.cluster, on loopback.

    python bench/cluster.py [--json] [--count N] [--jobs N]

Figures: `call` (round trips/s of `cluster.call` to an echo service in
another process, one caller) and `call_concurrent` (100 callers, pipelined
on the one link), each against plain trio doing the same over TCP between
two processes: length-prefixed frames ping-ponged by one caller, and 100
callers multiplexed on one connection by request id. `scaling`: a CPU-bound job (`--work` loop steps)
run `--jobs` times over many worker services, half of them on a second node
in another process, against all of them on one node; on a 2-core machine
the ideal ratio is 2. `cores`: the same jobs in two bare Python processes
against one, the most `scaling` can show on this machine right now (other
load takes cores away). Medians of 3 runs.
"""

from __future__ import annotations

import argparse
import functools
import struct
import subprocess
import sys
import time
from typing import Any

import trio

import skypy
from messages import figure, report, skypy_call  # skypy_call: calls in a loop, to the other node or inside one
from skypy import cluster

CONCURRENT_CALLERS = 100
WORKERS = 16  # worker services in the scaling figure, spread over the nodes


def work(steps: int) -> int:
    """The CPU-bound job: pure Python arithmetic, as a game server's logic would be."""
    total = 0
    for i in range(steps):
        total += i * i % 7
    return total


async def echo_service() -> None:
    skypy.dispatch("lua", lambda session, source, x: skypy.ret(x))
    cluster.register("echo")


async def worker_service(name: str) -> None:
    skypy.dispatch("lua", lambda session, source, steps: skypy.ret(work(steps)))
    cluster.register(name)


# --- the other node -------------------------------------------------------------


async def serve() -> None:
    """The second node (run as ``cluster.py --serve``): echo and workers; prints its port."""
    async with skypy.open_node() as node:
        await node.newservice(echo_service)
        for n in range(WORKERS):
            await node.newservice(worker_service, f"worker{n}")
        _, port = await cluster.open(0)
        print(port, flush=True)
        await trio.sleep_forever()


# --- the plain trio baseline: framed request/response over TCP -----------------------

# A frame: 2-byte big-endian length, then a 4-byte request id and the payload,
# as a cluster request carries a session and a packed value.
_HEADER = struct.Struct(">HI")
_PAYLOAD = b"\x04" + b"\x00" * 8  # about the size of a packed small integer and a name


async def _frames(stream: trio.SocketStream) -> Any:
    """Yield (request id, payload) for each frame read from `stream`."""
    buffer = bytearray()
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
        buffer += data
        while len(buffer) >= 2:
            size = int.from_bytes(buffer[:2], "big")
            if len(buffer) < 2 + size:
                break
            rid = int.from_bytes(buffer[2:6], "big")
            yield rid, bytes(buffer[6 : 2 + size])
            del buffer[: 2 + size]


def _frame(rid: int, payload: bytes) -> bytes:
    return _HEADER.pack(4 + len(payload), rid) + payload


async def tcp_serve() -> None:
    """The baseline's other process (``cluster.py --tcp-serve``): echoes each frame; prints its port."""

    async def echo(stream: trio.SocketStream) -> None:
        async for rid, payload in _frames(stream):
            await stream.send_all(_frame(rid, payload))

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(echo, listeners)


async def tcp_call(port: int, count: int, callers: int) -> float:
    """Round trips/s of `callers` tasks each sending a frame and waiting for its echo, on one connection."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    each = count // callers
    waiting: dict[int, trio.Event] = {}
    send_lock = trio.Lock()

    async def reader() -> None:
        async for rid, _ in _frames(stream):
            waiting.pop(rid).set()

    async def caller(first: int) -> None:
        for rid in range(first, first + each):
            done = waiting[rid] = trio.Event()
            async with send_lock:
                await stream.send_all(_frame(rid, _PAYLOAD))
            await done.wait()

    async with stream, trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        start = time.perf_counter()
        async with trio.open_nursery() as callers_:
            for n in range(callers):
                callers_.start_soon(caller, n * each)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return each * callers / elapsed


def burn(processes: int, jobs: int, steps: int) -> float:
    """Jobs/s of `jobs` jobs shared by `processes` bare Python processes run side by side."""
    start = time.perf_counter()
    children = [
        subprocess.Popen([sys.executable, __file__, "--burn", str(jobs // processes), str(steps)])
        for _ in range(processes)
    ]
    for child in children:
        child.wait()
    return jobs / (time.perf_counter() - start)


class Peer:
    """A child process serving on a port it prints: a `--serve` node, or the `--tcp-serve` baseline."""

    def __init__(self, mode: str = "--serve") -> None:
        self.mode = mode

    def __enter__(self) -> Peer:
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.mode], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline().strip())
        self.address = f"127.0.0.1:{self.port}"
        return self

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(10)


# --- the figures --------------------------------------------------------------


async def spread_jobs(address: str | None, jobs: int, steps: int) -> float:
    """Jobs/s with all of them queued at once over the worker services: all local when
    `address` is None, else half of the workers on the other node, reached by proxies."""
    async with skypy.open_node(cluster={} if address is None else {"peer": address}) as node:
        local = WORKERS if address is None else WORKERS // 2
        workers = [await node.newservice(worker_service, f"worker{n}") for n in range(local)]
        for n in range(local, WORKERS):
            workers.append(await cluster.proxy("peer", f"@worker{n}"))
            await skypy.call(workers[-1], "lua", 1)  # dialled before the clock starts
        done = trio.Event()
        remaining = jobs

        async def driver() -> None:
            async def job(worker: int) -> None:
                nonlocal remaining
                await skypy.call(worker, "lua", steps)
                remaining -= 1
                if not remaining:
                    done.set()

            for n in range(jobs):
                skypy.fork(job, workers[n % WORKERS])

        start = time.perf_counter()
        await node.newservice(driver)
        await done.wait()
        return jobs / (time.perf_counter() - start)


def measure(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Medians of `repeats` runs of each figure and its baseline, alternating the two."""
    runs: dict[str, list[tuple[float, float]]] = {"call": [], "call_concurrent": [], "scaling": [], "cores": []}
    with Peer() as peer, Peer("--tcp-serve") as tcp_peer:
        for _ in range(args.repeats):
            for name, callers in (("call", 1), ("call_concurrent", CONCURRENT_CALLERS)):
                count = args.count if callers > 1 else args.count // 4
                remote_echo = functools.partial(cluster.call, "peer", "@echo")
                runs[name].append((
                    trio.run(functools.partial(skypy_call, count, callers, remote_echo, cluster={"peer": peer.address})),
                    trio.run(tcp_call, tcp_peer.port, count, callers),
                ))
            runs["scaling"].append((
                trio.run(spread_jobs, peer.address, args.jobs, args.work),
                trio.run(spread_jobs, None, args.jobs, args.work),
            ))
            runs["cores"].append((burn(2, args.jobs, args.work), burn(1, args.jobs, args.work)))
    units = {"call": "round trips/s", "call_concurrent": "round trips/s", "scaling": "jobs/s", "cores": "jobs/s"}
    results = {}
    for name, pairs in runs.items():
        results[name] = figure([v for v, _ in pairs], [b for _, b in pairs], units[name])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--count", type=int, default=40_000, help="calls per concurrent run (one caller: a quarter)")
    parser.add_argument("--jobs", type=int, default=1_000, help="jobs per scaling run")
    parser.add_argument("--work", type=int, default=50_000, help="loop steps per job (about 3 ms)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tcp-serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--burn", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve)
        return
    if args.tcp_serve:
        trio.run(tcp_serve)
        return
    if args.burn:
        for _ in range(args.burn[0]):
            work(args.burn[1])
        return
    report(measure(args), args.json)


if __name__ == "__main__":
    main()
