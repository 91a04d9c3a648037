"""A server-shaped load: framed TCP clients → gate → an agent per client → three services.

    python bench/server.py [--json] [--clients 50,1000] [--duration 5] [--repeats 3]
    python bench/server.py --growth       # cost at 50 / 1,000 / 5,000 clients, and idle services

Each request makes the client's agent call a store service, then fork two
concurrent calls to two other services and wait for both, then answer:
the shape of a game or chat server's request. Figures per client count:
requests/s, the server's CPU µs per request, and the clients' p50/p99
latency in ms, with all services on one node (`node`) and with the store
on a second node reached over the cluster (`cluster`). The baseline,
measured in the same run, is what a trio user would write: a task per
connection and three service tasks reached by request/response over
memory channels, the two concurrent calls in a nursery.

`--growth` prints how the cost per request changes with 50, 1,000 and
5,000 clients, with 50 clients among 5,000 idle connections (each with its
agent) and among 100,000 idle services, and the spawn rate and memory per
service of 10,000 and 100,000 idle services (each count in a fresh process,
so that no heap left by an earlier run hides their memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket as stdsocket
import statistics
import struct
import subprocess
import sys
import time
from typing import Any, Awaitable, Callable

import trio

import skypy
from echo import pin  # bench/echo.py: server and client on cores of their own
from messages import figure, report  # bench/messages.py: one way to make and print figures
from skypy import cluster, netpack, socket
from skypy.cli import RUN_GC

REQUEST = netpack.pack(b"get 42")
_FRAME = struct.Struct(">H")


# --- the skypy server -------------------------------------------------------------


async def store_service() -> None:
    skypy.dispatch("lua", lambda session, source, key: skypy.ret(f"value of {key}"))
    skypy.register(".store")
    cluster.register("store")


async def side_service(name: str) -> None:
    skypy.dispatch("lua", lambda session, source, key: skypy.ret(len(key)))
    skypy.register(name)


async def agent(fd: int, store: int | str) -> None:
    """One client's agent: each packet is a request served by a coroutine of its own."""

    async def request(session: int, source: int, fd_: int, packet: bytes) -> None:
        value = await skypy.call(store, "lua", packet)
        answers: list[int] = []
        me = object()

        async def side(name: str) -> None:
            answers.append(await skypy.call(name, "lua", value))
            if len(answers) == 2:
                skypy.wakeup(me)

        skypy.fork(side, ".profile")
        skypy.fork(side, ".inventory")
        await skypy.wait(me)
        socket.write(fd, netpack.pack(b"ok %d" % sum(answers)))

    skypy.dispatch("client", request)


async def skypy_server(
    clients: int, duration: float, store_node: str | None, idle_connections: int = 0, idle_services: int = 0
) -> dict[str, float]:
    """Serve the load client's `clients` connections, and its `idle_connections` that send
    nothing, beside `idle_services` services that get no message; the store on this node
    or on `store_node`."""
    # The collector as `skypy run` sets it (RUN_GC): this is what a server run by the command does.
    cluster_table = {} if store_node is None else {"store": store_node}
    async with skypy.open_node(cluster=cluster_table, gc=RUN_GC) as node:
        store: int | str = ".store"
        if store_node is None:
            await node.newservice(store_service)
        else:
            store = await cluster.proxy("store", "@store")
            await skypy.call(store, "lua", b"warm up")  # dialled before the clock starts
        await node.newservice(side_service, ".profile")
        await node.newservice(side_service, ".inventory")
        for _ in range(idle_services):
            await node.newservice(idle_service)
        ports: list[int] = []

        async def watchdog() -> None:
            gate = await skypy.newservice("gate")

            async def on_socket(event: str, fd: int, *args: Any) -> None:
                if event == "open":
                    handler = await skypy.newservice(agent, fd, store)
                    await skypy.call(gate, "lua", "forward", fd, 0, handler)

            skypy.dispatch_commands({"socket": on_socket})
            conf = {"address": "127.0.0.1", "port": 0, "maxclient": clients + idle_connections + 10}
            _, port = await skypy.call(gate, "lua", "open", conf)
            ports.append(port)

        await node.newservice(watchdog)
        return await _load(ports[0], clients, duration, idle_connections)


# --- the plain trio baseline ---------------------------------------------------------


async def trio_server(clients: int, duration: float, store_node: str | None) -> dict[str, float]:
    """A task per connection; three service tasks answering over memory channels."""

    def service(answer: Callable[[Any], Any]) -> Callable[[trio.MemoryReceiveChannel[Any]], Awaitable[None]]:
        async def serve(requests: trio.MemoryReceiveChannel[Any]) -> None:
            async for arg, reply in requests:
                reply.send_nowait(answer(arg))

        return serve

    async with trio.open_nursery() as nursery:
        channels = {}
        for name, answer in (("store", lambda key: f"value of {key}"), ("profile", len), ("inventory", len)):
            send, receive = trio.open_memory_channel[Any](1000)
            channels[name] = send
            nursery.start_soon(service(answer), receive)

        async def call(name: str, arg: Any) -> Any:
            reply_send, reply_receive = trio.open_memory_channel[Any](1)
            await channels[name].send((arg, reply_send))
            return await reply_receive.receive()

        async def side(name: str, value: str, answers: list[int]) -> None:
            answers.append(await call(name, value))

        async def connection(stream: trio.SocketStream) -> None:
            try:
                await serve_connection(stream)
            except trio.BrokenResourceError:
                pass  # the load client closes with answers unread when its time is up

        async def serve_connection(stream: trio.SocketStream) -> None:
            buffer = b""
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
                while len(buffer) >= 2 and len(buffer) >= 2 + _FRAME.unpack_from(buffer)[0]:
                    size = _FRAME.unpack_from(buffer)[0]
                    packet, buffer = buffer[2 : 2 + size], buffer[2 + size :]
                    value = await call("store", packet)
                    answers: list[int] = []
                    async with trio.open_nursery() as both:
                        both.start_soon(side, "profile", value, answers)
                        both.start_soon(side, "inventory", value, answers)
                    await stream.send_all(netpack.pack(b"ok %d" % sum(answers)))

        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1", backlog=clients + 10)
        nursery.start_soon(trio.serve_listeners, connection, listeners)
        result = await _load(listeners[0].socket.getsockname()[1], clients, duration)
        nursery.cancel_scope.cancel()
    return result


# --- the load client, in its own process --------------------------------------------


async def _load(port: int, clients: int, duration: float, idle: int = 0) -> dict[str, float]:
    """Run the client process against `port` (this process serving it); its figures."""
    done = await trio.run_process(
        [sys.executable, __file__, "--client", str(port), str(clients), str(duration), str(os.getpid()), str(idle)],
        capture_stdout=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(port: int, clients: int, duration: float, server_pid: int, idle: int) -> dict[str, float]:
    """Every connection sends a request, waits for its answer, and again; after a warm-up,
    requests/s, the latency of each, and the server's CPU per request over the same window.
    `idle` more connections are opened first and send nothing."""
    quiet = [stdsocket.create_connection(("127.0.0.1", port)) for _ in range(idle)]
    selector = selectors.DefaultSelector()
    for _ in range(clients):
        sock = stdsocket.create_connection(("127.0.0.1", port))
        sock.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, 1)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, [b"", time.perf_counter()])
        sock.send(REQUEST)
    # The clock starts half a second after every connection has had its
    # first answer, so agents still being started do not count.
    unanswered = clients
    cpu_at_begin: float | None = None
    latencies: list[float] = []
    now = time.perf_counter()
    begin = end = float("inf")
    while now < end:
        for key, _ in selector.select(timeout=1.0):
            state = key.data
            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            if not data:
                raise SystemExit("the server closed a connection")
            state[0] += data
            while len(state[0]) >= 2 and len(state[0]) >= 2 + _FRAME.unpack_from(state[0])[0]:
                state[0] = state[0][2 + _FRAME.unpack_from(state[0])[0] :]
                now = time.perf_counter()
                if now >= begin:
                    if cpu_at_begin is None:
                        cpu_at_begin = _cpu_seconds(server_pid)
                    latencies.append(now - state[1])
                elif len(state) == 2:
                    state.append(True)  # answered once
                    unanswered -= 1
                    if not unanswered:
                        begin, end = now + 0.5, now + 0.5 + duration
                        cpu_at_begin = None
                state[1] = now
                key.fileobj.send(REQUEST)  # type: ignore[union-attr]
        now = time.perf_counter()
    cpu = _cpu_seconds(server_pid) - (cpu_at_begin or 0.0)
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    for sock in quiet:
        sock.close()
    latencies.sort()
    return {
        "rps": len(latencies) / duration,
        "cpu_us": cpu / max(len(latencies), 1) * 1e6,
        "p50_ms": latencies[len(latencies) // 2] * 1e3 if latencies else 0.0,
        "p99_ms": latencies[len(latencies) * 99 // 100] * 1e3 if latencies else 0.0,
    }


# --- the second node, for the store over the cluster -------------------------------


async def serve_store() -> None:
    """The store's node (``server.py --serve``): prints its cluster port."""
    async with skypy.open_node() as node:
        await node.newservice(store_service)
        _, port = await cluster.open(0)
        print(port, flush=True)
        await trio.sleep_forever()


class StoreNode:
    """A `--serve` node in a child process."""

    def __enter__(self) -> StoreNode:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        self.address = f"127.0.0.1:{int(self.process.stdout.readline())}"
        return self

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(10)


# --- idle services -----------------------------------------------------------------------


async def idle_service() -> None:
    """A service that waits for messages and gets none."""
    skypy.dispatch("lua", lambda session, source: skypy.ret())


async def idle_services(count: int) -> dict[str, float]:
    """Spawn rate of `count` idle services, and the memory each holds."""
    async with skypy.open_node() as node:
        before = _rss_kib()
        start = time.perf_counter()
        for _ in range(count):
            await node.newservice(idle_service)
        elapsed = time.perf_counter() - start
        return {"spawn_per_s": count / elapsed, "kib_each": (_rss_kib() - before) / count}


def _rss_kib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- measuring --------------------------------------------------------------------------


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def measure(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per client count and placement: skypy and its baseline taking turns, medians of `repeats`."""
    results: dict[str, dict[str, Any]] = {}
    with StoreNode() as store_node:
        for clients in args.clients:
            for placement, where in (("node", None), ("cluster", store_node.address)):
                ours, base = [], []
                for _ in range(args.repeats):
                    ours.append(trio.run(skypy_server, clients, args.duration, where))
                    base.append(trio.run(trio_server, clients, args.duration, None))
                mine, theirs = _median(ours), _median(base)
                name = f"{placement}_{clients}"
                results[name] = {
                    **figure([r["rps"] for r in ours], [r["rps"] for r in base], "requests/s"),
                    "cpu_us": round(mine["cpu_us"], 1),
                    "p50_ms": round(mine["p50_ms"], 2),
                    "p99_ms": round(mine["p99_ms"], 2),
                    "baseline_cpu_us": round(theirs["cpu_us"], 1),
                }
    return results


def growth(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Cost per request at 50, 1,000 and 5,000 clients, and at 50 among idle connections or
    services (one node); then idle services' own cost."""
    table: dict[str, dict[str, Any]] = {}
    for name, clients, idle_connections, idle_services in (
        ("clients_50", 50, 0, 0),
        ("clients_1000", 1000, 0, 0),
        ("clients_5000", 5000, 0, 0),
        ("50_of_5000_conns", 50, 4950, 0),
        ("50_100k_services", 50, 0, 100_000),
    ):
        runs = [
            trio.run(skypy_server, clients, args.duration, None, idle_connections, idle_services)
            for _ in range(args.repeats)
        ]
        table[name] = {k: round(v, 2) for k, v in _median(runs).items()}
    for count in (10_000, 100_000):
        # A fresh process each: after the runs above, freed heap would take the new services.
        done = subprocess.run([sys.executable, __file__, "--idle", str(count)], capture_output=True, check=True)
        table[f"idle_{count}"] = {k: round(v, 1) for k, v in json.loads(done.stdout).items()}
    return table


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        pin(1)
        port, clients, duration, server_pid, idle = sys.argv[2:]
        print(json.dumps(client(int(port), int(clients), float(duration), int(server_pid), int(idle))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--clients", type=lambda s: [int(n) for n in s.split(",")], default=[50, 1000])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--growth", action="store_true", help="the cost table instead of the figures")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--idle", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve_store)
        return
    if args.idle:
        pin(0)
        print(json.dumps(trio.run(idle_services, args.idle)))
        return
    pin(0)
    if args.growth:
        table = growth(args)
        if args.json:
            print(json.dumps(table))
        else:
            for name, row in table.items():
                print(f"{name:18} " + "  ".join(f"{k} {v:,}" for k, v in row.items()))
        return
    results = measure(args)
    if args.json:
        report(results, True)
        return
    for name, r in results.items():
        print(
            f"{name:14} {r['value']:>8,} {r['unit']:11} baseline {r['baseline']:>8,}  ratio {r['ratio']:.2f}x  "
            f"cpu {r['cpu_us']} µs/request (baseline {r['baseline_cpu_us']})  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
        )


if __name__ == "__main__":
    main()
