"""The example of config/cluster.toml: services spread over two nodes, one core each.

Node back starts the workers and registers them for the cluster as @worker0,
@worker1…; node front starts as many workers of its own, gets a proxy (a
local handle) for each remote one, and hands out jobs to all of them alike:
the remote half runs on the other core while the local half runs here.
"""

import skypy
from skypy import cluster

WORKERS = 4
JOBS = 32
STEPS = 300_000


def sum_squares(n):
    return sum(i * i % 7 for i in range(n))


async def wait_for_back():
    """back starts at the same time as front: ask until it answers, saying once whom we wait for."""
    said = False
    while True:
        try:
            return await cluster.query("back", "worker0")
        except skypy.CallError as exc:
            if not said:
                skypy.error(f"waiting for node back ({exc}); start it with: skypy run CONFIG --node back")
                said = True
            await skypy.sleep(0.2)


async def front():
    workers = [await skypy.newservice("clusterdemo", "worker") for _ in range(WORKERS)]
    await wait_for_back()
    workers += [await cluster.proxy("back", f"@worker{n}") for n in range(WORKERS)]
    started, results = skypy.now(), []
    done = object()

    async def job(n):
        results.append(await skypy.call(workers[n % len(workers)], "lua", "sum_squares", STEPS))
        if len(results) == JOBS:
            skypy.wakeup(done)

    for n in range(JOBS):
        skypy.fork(job, n)
    await skypy.wait(done)
    skypy.error(f"front: {JOBS} jobs on {len(workers)} workers over 2 nodes in {skypy.now() - started:.2f} s")


async def main(role=None):
    if role == "worker":
        skypy.dispatch_commands({"sum_squares": sum_squares})
    elif skypy.getenv("node") == "back":
        for n in range(WORKERS):
            cluster.register(f"worker{n}", await skypy.newservice("clusterdemo", "worker"))
        skypy.error(f"back: {WORKERS} workers registered")
    else:
        skypy.fork(front)
