"""WebSocket echo messages/s through skypy.websocket, against trio-websocket's echo server in the same run.

    python bench/websocket.py [--json] [--duration 5] [--connections 50] [--size 64] [--repeats 3]

Figure `ws_echo` (messages/s): a load client in its own process opens
`--connections` WebSocket connections and keeps one `--size`-byte binary
message in flight on each, sending the next when the echo is back. skypy
serves it with `http.serve` and a Router WebSocket route doing
``ws.send(await ws.receive())``, every byte through the node's socket
server. The baseline is trio-websocket's `serve_websocket` with a handler
doing ``await ws.send_message(await ws.get_message())``. Server and client
are pinned to different cores; the servers take turns, and each figure is
the median of `--repeats` turns. Also printed: the server process's CPU
time per message (user + system, over the whole turn, warm-up included).
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import socket as stdsocket
import struct
import sys
from typing import Awaitable, Callable

import trio
import trio_websocket

import skypy
import turns  # bench/turns.py: the servers' turns under the load, and CPU per operation
from echo import pin  # bench/echo.py: server and client on cores of their own
from messages import report  # bench/messages.py: one way to print figures
from skypy import http, websocket

# --- the servers ------------------------------------------------------------------


async def skypy_server(client: Callable[[int], Awaitable[dict[str, float]]]) -> dict[str, float]:
    async with skypy.open_node() as node:
        where: list[int] = []

        async def service() -> None:
            app = http.Router()

            @app.websocket("/echo")
            async def echo(ws: websocket.WebSocket) -> None:
                while True:
                    ws.send(await ws.receive())

            where.append((await http.serve(app))[1])

        await node.newservice(service)
        return await client(where[0])


async def trio_websocket_server(client: Callable[[int], Awaitable[dict[str, float]]]) -> dict[str, float]:
    async def echo(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except trio_websocket.ConnectionClosed:
            pass

    async with trio.open_nursery() as nursery:
        server = await nursery.start(functools.partial(trio_websocket.serve_websocket, echo, "127.0.0.1", 0, ssl_context=None))
        result = await client(server.port)
        nursery.cancel_scope.cancel()
    return result


# --- the load client, in its own process ------------------------------------------


def handshake(port: int) -> stdsocket.socket:
    """A connection upgraded to WebSocket on ``/echo`` (the answer is checked only for its status)."""
    sock = stdsocket.create_connection(("127.0.0.1", port))
    sock.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(4096)
    if not answer.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"the server refused the upgrade: {answer[:80]!r}")
    return sock


def masked_frame(payload: bytes) -> bytes:
    """One binary frame as a client must send it: masked (here with a fixed key; the echo needs no secrecy)."""
    mask = b"\x12\x34\x56\x78"
    length = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    head = bytes([0x82]) + length
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def load_client(port: int, connections: int, size: int, duration: float) -> dict[str, float]:
    """One message in flight per connection: echoes/s after a warm-up, and the total sent."""
    echo_size = size + (2 if size < 126 else 4)  # the server's frames are not masked
    socks = [handshake(port) for _ in range(connections)]
    return turns.ping_pong(socks, masked_frame(b"x" * size), lambda received: echo_size, duration)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--client":
        pin(1)
        port, connections, size, duration = sys.argv[2:6]
        print(json.dumps(load_client(int(port), int(connections), int(size), float(duration))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per turn")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--size", type=int, default=64, help="bytes per message")
    parser.add_argument("--repeats", type=int, default=3, help="turns each server takes")
    args = parser.parse_args()
    pin(0)
    client_args = [str(args.connections), str(args.size), str(args.duration)]
    results = {"ws_echo": turns.measure(skypy_server, trio_websocket_server, __file__, client_args, args.repeats, "messages/s")}
    report(results, args.json)
    if not args.json:
        turns.print_cpu(results, "message")


if __name__ == "__main__":
    main()
