"""Cross-node calls and multi-core scaling of skypy.cluster, on loopback.

    python bench/cluster.py [--json] [--count N] [--jobs N]

Figures: `call` (round trips/s of `cluster.call` to an echo service in
another process, one caller) and `call_concurrent` (100 callers, pipelined
on the one link), each against the same calls inside one node (bench/
messages.py's `call`). `scaling`: a CPU-bound job (`--work` loop steps)
run `--jobs` times over many worker services, half of them on a second node
in another process, against all of them on one node; on a 2-core machine
the ideal ratio is 2. `cores`: the same jobs in two bare Python processes
against one, the most `scaling` can show on this machine right now (other
load takes cores away). Medians of 3 runs.
"""

from __future__ import annotations

import argparse
import functools
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
    """A `--serve` node in a child process."""

    def __enter__(self) -> Peer:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.address = f"127.0.0.1:{self.process.stdout.readline().strip()}"  # type: ignore[union-attr]
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
    with Peer() as peer:
        for _ in range(args.repeats):
            for name, callers in (("call", 1), ("call_concurrent", CONCURRENT_CALLERS)):
                count = args.count if callers > 1 else args.count // 4
                remote_echo = functools.partial(cluster.call, "peer", "@echo")
                runs[name].append((
                    trio.run(functools.partial(skypy_call, count, callers, remote_echo, cluster={"peer": peer.address})),
                    trio.run(skypy_call, count, callers),
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
    parser.add_argument("--burn", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve)
        return
    if args.burn:
        for _ in range(args.burn[0]):
            work(args.burn[1])
        return
    report(measure(args), args.json)


if __name__ == "__main__":
    main()
