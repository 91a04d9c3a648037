"""What a supervised restart costs: kill a child, until its name reaches a new instance whose main has returned.

    python bench/restart.py [--json] [--count N]

Figures, in microseconds per restart (lower is better): `restart` (a
one_for_one supervisor of one child named `.child`: kill it, wait until
`.child` names a new service), `restart_all` (a one_for_all supervisor of
ten children: kill the first, wait until the last has a new instance, so
nine stops and ten starts). The baseline, measured in the same run, is the
same restart done by hand with no supervisor: kill, `newservice`, `name`
(for `restart_all`, each of the ten children in turn).
A supervisor restarts its child after its main has returned, so the name
resolving is the moment the new instance serves.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import trio

import skypy
from messages import figure, report  # bench/messages.py: one way to make and print figures
from skypy import supervisor

ALL_CHILDREN = 10


async def _child() -> None:
    skypy.dispatch("lua", lambda session, source: skypy.ret())


async def _renamed(name: str, old: int | None) -> int:
    """Wait until `name` names a service other than `old`; its handle."""
    while True:
        handle = skypy.localname(name)
        if handle is not None and handle != old:
            return handle
        await trio.sleep(0)


async def supervised(count: int, children: int, strategy: str) -> float:
    """Microseconds per restart: kill the first child, wait until the last is a new instance."""
    async with skypy.open_node():
        specs = [supervisor.child(_child, name=f".child{i}") for i in range(children)]
        await supervisor.start(specs, strategy=strategy, intensity=count + 1, period=3600)
        first, last = ".child0", f".child{children - 1}"
        started = time.perf_counter()
        for _ in range(count):
            old = skypy.localname(last)
            await skypy.kill(first)
            await _renamed(last, old)
        return (time.perf_counter() - started) / count * 1e6


async def by_hand(count: int, children: int) -> float:
    """Microseconds per restart done without a supervisor: kill, newservice, name, for each child."""
    async with skypy.open_node():
        names = [f".child{i}" for i in range(children)]
        for name in names:
            skypy.name(name, await skypy.newservice(_child))
        started = time.perf_counter()
        for _ in range(count):
            for name in reversed(names):
                await skypy.kill(name)
            for name in names:
                skypy.name(name, await skypy.newservice(_child))
        return (time.perf_counter() - started) / count * 1e6


FIGURES: dict[str, tuple[Any, Any]] = {
    "restart": (lambda n: supervised(n, 1, "one_for_one"), lambda n: by_hand(n, 1)),
    "restart_all": (
        lambda n: supervised(n // ALL_CHILDREN, ALL_CHILDREN, "one_for_all"),
        lambda n: by_hand(n // ALL_CHILDREN, ALL_CHILDREN),
    ),
}


def measure(count: int, repeats: int) -> dict[str, dict[str, object]]:
    """Median of `repeats` runs of each figure and its baseline, alternating the two."""
    results = {}
    for name, (ours, baseline) in FIGURES.items():
        ours_runs, base_runs = [], []
        for _ in range(repeats):
            ours_runs.append(trio.run(ours, count))
            base_runs.append(trio.run(baseline, count))
        results[name] = figure(ours_runs, base_runs, "µs/restart")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--count", type=int, default=2000, help="restarts per run (restart_all: a tenth)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported")
    args = parser.parse_args()
    report(measure(args.count, args.repeats), args.json)


if __name__ == "__main__":
    main()
