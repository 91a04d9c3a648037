"""HTTP keep-alive "hello" requests/s through skypy.http, against the same h11 handler on plain trio streams.

    python bench/http.py [--json] [--duration 5] [--connections 50] [--repeats 3]

Figure `http_hello` (requests/s): a load client in its own process keeps
`--connections` keep-alive connections, each sending ``GET /`` and waiting
for the answer before the next. skypy serves it with `http.serve` and a
Router whose handler returns ``http.text("hello")``, every byte through
the node's socket server. The baseline is a trio server (`serve_tcp`)
running, per connection, h11 on the `SocketStream` with the same answer,
byte for byte. Both parse requests with h11; skypy.http makes a plain
response's bytes itself (the bytes h11's send path makes, which the
baseline uses). Server and client are pinned to different cores; the two
servers take turns, and each figure is the median of `--repeats` turns.
Also printed: the server process's CPU time per request (user + system,
over the whole turn, warm-up included), for each.
"""

from __future__ import annotations

import argparse
import functools
import json
import socket as stdsocket
import sys
from typing import Awaitable, Callable

import h11
import trio

import skypy
import turns  # bench/turns.py: the servers' turns under the load, and CPU per operation
from echo import pin  # bench/echo.py: server and client on cores of their own
from messages import report  # bench/messages.py: one way to print figures
from skypy import http

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
HEADERS = {"content-type": "text/plain; charset=utf-8"}

# --- the servers ------------------------------------------------------------------


async def skypy_server(client: Callable[[int], Awaitable[dict[str, float]]]) -> dict[str, float]:
    async with skypy.open_node() as node:
        where: list[int] = []

        async def service() -> None:
            app = http.Router()

            @app.get("/")
            async def hello(req: http.Request) -> http.Response:
                return http.text("hello")

            where.append((await http.serve(app))[1])

        await node.newservice(service)
        return await client(where[0])


async def trio_hello(stream: trio.SocketStream) -> None:
    """The same answer on a plain trio stream, with h11 as its only protocol code."""
    conn = h11.Connection(h11.SERVER)
    fields = [(b"content-type", HEADERS["content-type"].encode()), (b"content-length", b"5")]
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.EndOfMessage):
                answer = conn.send(h11.Response(status_code=200, headers=fields, reason=b"OK"))
                answer += conn.send(h11.Data(data=b"hello")) + conn.send(h11.EndOfMessage())  # type: ignore[operator]
                await stream.send_all(answer)  # type: ignore[arg-type]
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                break
    except (trio.BrokenResourceError, h11.ProtocolError):
        pass
    await stream.aclose()


async def trio_server(client: Callable[[int], Awaitable[dict[str, float]]]) -> dict[str, float]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, trio_hello, 0, host="127.0.0.1"))
        result = await client(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()
    return result


# --- the load client, in its own process ------------------------------------------


def load_client(port: int, connections: int, duration: float) -> dict[str, float]:
    """Keep-alive GETs on every connection, one at a time each: requests/s after a warm-up, and the total sent."""
    socks = []
    for _ in range(connections):
        sock = stdsocket.create_connection(("127.0.0.1", port))
        sock.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, 1)
        socks.append(sock)
    return turns.ping_pong(socks, REQUEST, _answer_size, duration)


def _answer_size(received: bytes) -> int | None:
    """One answer's size, from its head's Content-Length, once the head is in."""
    head, found, _ = received.partition(b"\r\n\r\n")
    if not found:
        return None
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return len(head) + 4 + length


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--client":
        pin(1)
        port, connections, duration = sys.argv[2:5]
        print(json.dumps(load_client(int(port), int(connections), float(duration))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per turn")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="turns each server takes")
    args = parser.parse_args()
    pin(0)
    client_args = [str(args.connections), str(args.duration)]
    results = {"http_hello": turns.measure(skypy_server, trio_server, __file__, client_args, args.repeats, "requests/s")}
    report(results, args.json)
    if not args.json:
        turns.print_cpu(results, "request")


if __name__ == "__main__":
    main()
