"""TCP echo and bulk transfer through skypy.socket, against a plain trio server in the same run.

    python bench/echo.py [--json] [--duration 10] [--slices 5] [--connections 50] [--size 1024]

Figures: `echo` (round trips/s: a load client in its own process keeps
`--connections` connections each ping-ponging a `--size`-byte message; the
skypy service runs a coroutine per connection doing `write(id, await
read(id))`), `echo_dispatch` (the same load, answered in the service's
"socket" dispatch handler as a gate would, with no coroutine per
connection) and `bulk` (MB/s: the server writes 64 MiB to a fresh
connection, then closes it; the client reads to EOF). The baseline is a
trio server built on `serve_tcp` and `SocketStream`, driven by the same
client. Server and client are pinned to different cores. The servers take
turns (`--slices` of the echo load, one bulk transfer each), and each
figure is the median of its turns.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import selectors
import socket as stdsocket
import sys
import time
from typing import Any, Awaitable, Callable

import trio

import skypy
from messages import figure, report  # bench/messages.py: one way to make and print figures
from skypy import netpack, socket

BULK_BYTES = 64 << 20
BULK_BLOCK = 64 << 10


# --- the servers ------------------------------------------------------------


async def skypy_server(setup: Callable[[int], Awaitable[None]]) -> None:
    """Run a skypy node whose one service listens and hands the listening id to ``setup``."""
    async with skypy.open_node() as node:
        ports: list[int] = []

        async def service() -> None:
            listen_id, _, port = await socket.listen("127.0.0.1", 0)
            await setup(listen_id)
            ports.append(port)

        await node.newservice(service)
        await run_client(ports[0])


def coroutine_per_connection(serve: Callable[[int], Awaitable[None]]) -> Callable[[int], Awaitable[None]]:
    """A setup that starts each accepted connection and runs ``serve(id)`` as its coroutine."""

    async def setup(listen_id: int) -> None:
        async def accepted(id: int, address: Any) -> None:
            await socket.start(id)
            await serve(id)

        await socket.start(listen_id, accepted)

    return setup


async def skypy_echo(id: int) -> None:
    try:
        while True:
            socket.write(id, await socket.read(id))
    except socket.SocketClosed:
        await socket.close(id)


async def echo_in_dispatch(listen_id: int) -> None:
    """The echo as a gate would write it: DATA answered in the socket dispatch handler."""

    def on_socket(session: int, source: int, kind: int, id: int, *args: Any) -> Any:
        if kind == socket.DATA:
            socket.write(id, args[0])
        elif kind == socket.ACCEPT:
            return socket.start(args[0])  # a coroutine: it runs as one
        elif kind == socket.CLOSE:
            return socket.close(id)
        return None

    skypy.dispatch("socket", on_socket)
    await socket.start(listen_id)


async def skypy_bulk(id: int) -> None:
    socket.warning(id, lambda id, queued: None)  # a 64 MiB queue is the point here
    block = b"x" * BULK_BLOCK
    for _ in range(BULK_BYTES // BULK_BLOCK):
        socket.write(id, block)
    await socket.close(id)


async def trio_server(handler: Callable[[trio.SocketStream], Awaitable[None]]) -> None:
    """Run a plain trio server answering each connection with ``handler(stream)``."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        await run_client(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()


async def trio_echo(stream: trio.SocketStream) -> None:
    try:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)
    except trio.BrokenResourceError:
        pass
    await stream.aclose()


async def trio_bulk(stream: trio.SocketStream) -> None:
    block = b"x" * BULK_BLOCK
    for _ in range(BULK_BYTES // BULK_BLOCK):
        await stream.send_all(block)
    await stream.aclose()


# --- the load client, in its own process ------------------------------------

CLIENT_ARGS: list[str] = []
RESULT: dict[str, float] = {}


async def run_client(port: int) -> None:
    proc = await trio.run_process(
        [sys.executable, __file__, "--client", str(port), *CLIENT_ARGS], capture_stdout=True
    )
    RESULT.update(json.loads(proc.stdout))


def echo_client(port: int, connections: int, size: int, duration: float, framed: bool = False) -> float:
    """Ping-pong `size`-byte messages on every connection; round trips/s after a warm-up.

    `framed`: each message is one netpack frame (its 2-byte header included in `size`), for the gate.
    """
    message = netpack.pack(b"x" * (size - netpack.HEADER_SIZE)) if framed else b"x" * size
    selector = selectors.DefaultSelector()
    for _ in range(connections):
        sock = stdsocket.create_connection(("127.0.0.1", port))
        sock.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, 1)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, [0])
        sock.send(message)
    warmup = min(1.0, duration / 10)
    trips = 0
    now = time.perf_counter()
    begin, end = now + warmup, now + warmup + duration
    counted_from = None
    while now < end:
        if counted_from is None and now >= begin:
            counted_from, trips = now, 0
        for key, _ in selector.select(timeout=1.0):
            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            if not data:
                raise SystemExit("the server closed a connection")
            received = key.data
            received[0] += len(data)
            if received[0] >= size:
                received[0] -= size
                trips += 1
                key.fileobj.send(message)  # type: ignore[union-attr]
        now = time.perf_counter()
    for key in list(selector.get_map().values()):
        # Take the answer still in flight before closing, so the server sees
        # a clean close rather than a reset.
        sock = key.fileobj
        sock.setblocking(True)  # type: ignore[union-attr]
        pending = size - key.data[0]
        while pending > 0:
            pending -= len(sock.recv(65536))  # type: ignore[union-attr]
        sock.close()  # type: ignore[union-attr]
    return trips / (now - (counted_from or begin))


def bulk_client(port: int, rounds: int) -> dict[str, float]:
    """Read `rounds` fresh connections to EOF; MB/s over them all."""
    total, elapsed = 0, 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        with stdsocket.create_connection(("127.0.0.1", port)) as sock:
            while chunk := sock.recv(1 << 20):
                total += len(chunk)
        elapsed += time.perf_counter() - start
    if total != rounds * BULK_BYTES:
        raise SystemExit(f"bulk: {total} bytes arrived of {rounds * BULK_BYTES}")
    return {"bulk": total / elapsed / 1e6}


# --- measuring ------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Each figure in slices, skypy's and plain trio's taking turns, and the median slice of each.

    Taking turns in short slices, rather than one long run each, keeps a slow
    spell of the machine (a VM's neighbours) from landing on one side only.
    """
    slice_seconds = str(args.duration / args.slices)
    load = [str(args.connections), str(args.size), slice_seconds]
    figures = {
        "echo": ("round trips/s", [skypy_server, coroutine_per_connection(skypy_echo)], [trio_server, trio_echo],
                 ["echo", *load], args.slices),
        "echo_dispatch": ("round trips/s", [skypy_server, echo_in_dispatch], [trio_server, trio_echo],
                          ["echo_dispatch", *load], args.slices),
        "bulk": ("MB/s", [skypy_server, coroutine_per_connection(skypy_bulk)], [trio_server, trio_bulk],
                 ["bulk", "1"], args.bulk_rounds),
    }
    results = {}
    for name, (unit, ours, baseline, client_args, slices) in figures.items():
        CLIENT_ARGS[:] = client_args
        values, bases = [], []
        for _ in range(slices):
            trio.run(*ours)
            values.append(RESULT.pop(name))
            trio.run(*baseline)
            bases.append(RESULT.pop(name))
        results[name] = figure(values, bases, unit)
    return results


def pin(cpu: int) -> None:
    """Keep this process on one core, the server on one and the client on another, so
    that the scheduler moving them about does not swamp the figures (2 cores suffice).

    A child inherits its parent's affinity, by then narrowed to the server's
    core, so the cores there are to choose from are handed down in the
    environment (BENCH_CPUS), recorded by the first process to pin itself.
    """
    cpus = os.environ.setdefault("BENCH_CPUS", ",".join(map(str, sorted(os.sched_getaffinity(0)))))
    choices = [int(c) for c in cpus.split(",")]
    if len(choices) >= 2:
        os.sched_setaffinity(0, {choices[cpu]})


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--client":
        pin(1)
        port, figure, *rest = sys.argv[2:]
        if figure.startswith("echo"):
            framed = rest[3:] == ["framed"]
            result = {figure: echo_client(int(port), int(rest[0]), int(rest[1]), float(rest[2]), framed)}
        else:
            result = bulk_client(int(port), int(rest[0]))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of echo load per server")
    parser.add_argument("--slices", type=int, default=5, help="turns each server takes at the echo load")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--size", type=int, default=1024, help="bytes per echo message")
    parser.add_argument("--bulk-rounds", type=int, default=5, help="64 MiB transfers per server, one a turn")
    args = parser.parse_args()
    pin(0)
    report(measure(args), args.json)


if __name__ == "__main__":
    main()
