"""A terminal client for the chat lobby example (`skypy run` serves it on 127.0.0.1:8888).

    .venv/bin/python examples/chat_client.py NAME [--host 127.0.0.1] [--port 8888]

Type a line to say it; /who lists who is in; /quit, Ctrl-D or Ctrl-C leaves.
When the server closes the connection first, the client says so and exits
with status 1. The protocol is in README.md ("The chat lobby").
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import AsyncIterator

import trio

from skypy import netpack

HELP = "type to talk; /who lists who is in; /quit or Ctrl-D leaves"


def show(packet: bytes) -> str:
    """How one server packet reads on the terminal."""
    kind, _, rest = packet.decode(errors="replace").partition(" ")
    if kind == "said":
        name, _, text = rest.partition(" ")
        return f"<{name}> {text}"
    if kind in ("joined", "left"):
        return f"* {rest} {kind}"
    if kind == "users":
        return f"* in the lobby: {', '.join(rest.split())}"
    if kind == "error":
        return f"! {rest}"
    return f"* {packet.decode(errors='replace')}"


class Connection:
    """The framed connection to the lobby."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.decoder = netpack.PacketDecoder()

    async def send(self, text: str) -> None:
        await self.stream.send_all(netpack.pack(text.encode()))

    async def packets(self) -> AsyncIterator[bytes]:
        """The server's packets, until it closes the connection."""
        while data := await self.stream.receive_some(65536):
            for packet in self.decoder.feed(data):
                yield packet


async def type_lines(conn: Connection) -> None:
    """Send what the user types until /quit or end of input."""
    while True:
        line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        text = line.rstrip("\n")
        if not line or text == "/quit":
            await conn.send("quit")
            return
        if text == "/who":
            await conn.send("who")
        elif text.startswith("/"):
            print(f"! {HELP}", flush=True)
        elif text:
            await conn.send(f"say {text}")


async def leave_on_ctrl_c(conn: Connection, left: trio.Event, signals: AsyncIterator[int]) -> None:
    """Ctrl-C leaves as /quit does: the server answers `bye` and closes."""
    async for _ in signals:
        left.set()
        try:
            await conn.send("quit")
        except trio.BrokenResourceError:
            return  # the server is gone already


async def chat(name: str, host: str, port: int) -> int:
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        print(f"cannot reach the lobby at {host}:{port}: {exc}", file=sys.stderr)
        return 1
    conn = Connection(stream)
    packets = conn.packets()
    await conn.send(f"login {name}")
    async for first in packets:
        print(show(first), flush=True)
        if first.startswith(b"error"):
            return 1
        break
    left = trio.Event()  # we asked to leave: the server's close is expected
    # Ctrl-C leaves the lobby from the moment the user is told how to leave.
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        print(f"* {HELP}", flush=True)
        return await talk(conn, packets, left, signals, f"{host}:{port}", name)


async def talk(
    conn: Connection, packets: AsyncIterator[bytes], left: trio.Event, signals: AsyncIterator[int], where: str,
    name: str,
) -> int:
    """Show the lobby's packets and send what is typed, until the server closes the connection.

    A lobby that restarted (its supervisor started a new, empty one) is joined again.
    """
    async with trio.open_nursery() as nursery:
        nursery.start_soon(leave_on_ctrl_c, conn, left, signals)

        async def typing() -> None:
            await type_lines(conn)
            left.set()

        nursery.start_soon(typing)
        try:
            async for packet in packets:
                if packet == b"bye":
                    left.set()
                print(show(packet), flush=True)
                if packet == b"error lobby restarted":
                    await conn.send(f"login {name}")
        except trio.BrokenResourceError:
            pass  # a reset: the server is gone all the same
        nursery.cancel_scope.cancel()  # the server closed: stop reading the keyboard
    if not left.is_set():
        print(f"* the server at {where} closed the connection", flush=True)
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="your name: 1 to 16 of A-Z a-z 0-9 _ -")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    try:
        status = trio.run(chat, args.name, args.host, args.port)
    except KeyboardInterrupt:  # Ctrl-C before the lobby answered: nothing to leave
        status = 130
    sys.exit(status)


if __name__ == "__main__":
    main()
