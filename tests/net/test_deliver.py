"""What a socket's reader delivers goes on, in its step, to the services its handlers send to: in order, and bounded."""

from __future__ import annotations

import trio

import skypy
from skypy import socket
from skypy._core.node import INLINE_RUNS
from skypy.testing import wait_until


async def recorder(seen: list[object]) -> None:
    skypy.dispatch("lua", lambda session, source, *args: seen.append(args))


async def relay(to: int) -> None:
    """On ("a", n), sends ("c", n) on to `to`."""
    skypy.dispatch("lua", lambda session, source, tag, n: skypy.send(to, "lua", "c", n))


async def owner(id: int, on_data: object) -> None:
    """Owns socket `id` and calls ``on_data(n)`` for each byte it reads, in its socket handler."""

    def data(session: int, source: int, kind: int, id_: int, *args: object) -> None:
        if kind == socket.DATA:
            for byte in args[0]:  # type: ignore[attr-defined]
                on_data(byte)  # type: ignore[operator]
        else:
            library(session, source, kind, id_, *args)

    await socket.start(id)
    library = skypy.dispatch("socket", data)


async def test_a_message_sent_on_from_the_chain_never_overtakes_one_sent_before_it(listener, node):
    # The owner sends b to y and a to x; x answers a with c to y. Run in the
    # reader's step or by their loops, y must see each b before its c.
    seen: list[object] = []
    y = await skypy.newservice(recorder, seen)
    x = await skypy.newservice(relay, y)
    client, id = await listener.connect(start=False)

    def on_data(n: int) -> None:
        skypy.send(x, "lua", "a", n)
        skypy.send(y, "lua", "b", n)

    await skypy.newservice(owner, id, on_data)
    async with client:
        for n in range(20):
            await client.send_all(bytes([n]))
        await wait_until(lambda: len(seen) == 40)
    for n in range(20):
        assert seen.index(("b", n)) < seen.index(("c", n))
    assert [args for args in seen if args[0] == "b"] == [("b", n) for n in range(20)]


async def test_a_packet_that_fans_out_past_the_chain_reaches_every_service(listener, node):
    # More services than the reader's step runs: the rest are left to their loops.
    seen: list[list[object]] = [[] for _ in range(INLINE_RUNS + 10)]
    targets = [await skypy.newservice(recorder, box) for box in seen]
    client, id = await listener.connect(start=False)

    def on_data(n: int) -> None:
        for target in targets:
            skypy.send(target, "lua", n)

    await skypy.newservice(owner, id, on_data)
    async with client:
        await client.send_all(b"\x07")
        await wait_until(lambda: all(box == [(7,)] for box in seen))


async def pinger(reached: trio.Event, stop: trio.Event) -> None:
    """Sends ("ping", n + 1) to whoever sent it ("ping", n), until `stop` is set; sets `reached` at 100."""

    def ping(session: int, source: int, tag: str, n: int, back: int) -> None:
        if n >= 100:
            reached.set()
        if not stop.is_set():
            skypy.send(back, "lua", "ping", n + 1, skypy.self())

    skypy.dispatch("lua", ping)


async def test_an_endless_chain_of_sends_from_a_packet_leaves_the_node_serving(listener, node):
    # Two services answer each other for ever, started by a packet: the
    # reader's step must end, or nothing else on the node would run.
    reached, stop = trio.Event(), trio.Event()
    first = await skypy.newservice(pinger, reached, stop)
    second = await skypy.newservice(pinger, reached, stop)
    other = await skypy.newservice(recorder, [])
    client, id = await listener.connect(start=False)
    await skypy.newservice(owner, id, lambda n: skypy.send(first, "lua", "ping", 0, second))
    async with client:
        await client.send_all(b"\x01")
        with trio.fail_after(5):
            await reached.wait()
            await skypy.call(other, "debug", "PING")
        stop.set()
