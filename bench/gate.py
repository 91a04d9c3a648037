"""Round trips through the gate and an agent, against bench/echo.py's socket echo.

    python bench/gate.py [--json] [--duration 10] [--connections 50] [--size 1024] [--repeats 3]

Figure `gate` (round trips/s): bench/echo.py's load client, in its own
process, keeps `--connections` connections each sending a `--size`-byte
netpack frame and waiting for the answer; the gate forwards each packet to
the connection's agent, which writes it back framed. Its baseline is the
socket echo, bench/echo.py's `echo` figure: a service with a coroutine per
connection doing ``write(id, await read(id))``, no framing and no agent.
`gate_vs_dispatch` is the same gate figure against bench/echo.py's
`echo_dispatch`, the echo answered in the socket dispatch handler with no
coroutine at all, as a gate reads: the floor of one service touching each
read. Same client, same run; the servers take turns, and each figure is
the median of `--repeats` turns.
"""

from __future__ import annotations

import argparse
from typing import Any

import trio

import echo  # bench/echo.py: its load client and its socket-level echo server
import skypy
from messages import figure, report  # bench/messages.py: one way to make and print figures
from skypy import netpack, socket


async def echo_agent() -> None:
    """An agent answering each client packet with the same packet."""

    def answer(session: int, source: int, fd: int, packet: bytes) -> None:
        socket.write(fd, netpack.pack(packet))

    skypy.dispatch("client", answer)


async def gate_server() -> None:
    """A node whose watchdog gives each connection an echo agent; the load client runs against it."""
    async with skypy.open_node() as node:
        ports: list[int] = []

        async def watchdog() -> None:
            gate = await skypy.newservice("gate")

            async def on_socket(event: str, fd: int, *args: Any) -> None:
                if event == "open":
                    agent = await skypy.newservice(echo_agent)
                    await skypy.call(gate, "lua", "forward", fd, 0, agent)

            skypy.dispatch_commands({"socket": on_socket})
            _, port = await skypy.call(gate, "lua", "open", {"address": "127.0.0.1", "port": 0})
            ports.append(port)

        await node.newservice(watchdog)
        await echo.run_client(ports[0])


def measure(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    client_args = [str(args.connections), str(args.size), str(args.duration)]
    ours, socket_echo, dispatch_echo = [], [], []
    for _ in range(args.repeats):
        echo.CLIENT_ARGS[:] = ["echo_gate", *client_args, "framed"]
        trio.run(gate_server)
        ours.append(echo.RESULT.pop("echo_gate"))
        echo.CLIENT_ARGS[:] = ["echo", *client_args]
        trio.run(echo.skypy_server, echo.coroutine_per_connection(echo.skypy_echo))
        socket_echo.append(echo.RESULT.pop("echo"))
        echo.CLIENT_ARGS[:] = ["echo_dispatch", *client_args]
        trio.run(echo.skypy_server, echo.echo_in_dispatch)
        dispatch_echo.append(echo.RESULT.pop("echo_dispatch"))
    return {
        "gate": figure(ours, socket_echo, "round trips/s"),
        "gate_vs_dispatch": figure(ours, dispatch_echo, "round trips/s"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per server and run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--size", type=int, default=1024, help="bytes per request frame, header included")
    parser.add_argument("--repeats", type=int, default=3, help="runs per server; the medians are reported")
    args = parser.parse_args()
    echo.pin(0)
    results = measure(args)
    report(results, args.json)


if __name__ == "__main__":
    main()
