"""A command's returned tuple is several values, as Lua's ``return a, b``: locally, inline and across the cluster."""

from __future__ import annotations

import trio

import skypy
from skypy import cluster
from skypy.cluster import wire as cluster_wire
from skypy.netpack import PacketDecoder


def pair() -> tuple[int, str]:
    return 1, "a"


async def pair_later() -> tuple[int, str]:
    await skypy.sleep(0)
    return 1, "a"


def table() -> list[object]:
    return [1, "a"]


def nothing() -> tuple[()]:
    return ()


def one_value_tuple() -> tuple[int]:
    return (7,)


async def commands() -> None:
    skypy.dispatch_commands(
        {"pair": pair, "pair_later": pair_later, "table": table, "nothing": nothing, "one": one_value_tuple}
    )
    cluster.register("values")


async def caller(addr: int) -> None:
    """Calls `addr` from a service holding its turn, so an idle callee answers inline."""

    async def ask(cmd: str) -> tuple[object, tuple[object, ...]]:
        return await skypy.call(addr, "lua", cmd), await skypy.rawcall(addr, "lua", cmd)

    skypy.dispatch_commands({"ask": ask})


async def test_a_returned_tuple_answers_several_values_and_a_list_one(node):
    addr = await skypy.newservice(commands)
    for cmd in ("pair", "pair_later"):
        assert await skypy.call(addr, "lua", cmd) == (1, "a")
        assert await skypy.rawcall(addr, "lua", cmd) == (1, "a")
    assert await skypy.call(addr, "lua", "table") == [1, "a"]
    assert await skypy.rawcall(addr, "lua", "table") == ([1, "a"],)
    assert await skypy.rawcall(addr, "lua", "nothing") == ()
    assert await skypy.call(addr, "lua", "one") == 7


async def test_an_inline_answer_counts_values_as_a_queued_one(node):
    addr = await skypy.newservice(commands)
    asker = await skypy.newservice(caller, addr)
    for cmd in ("pair", "pair_later"):
        assert await skypy.call(asker, "lua", "ask", cmd) == ((1, "a"), (1, "a"))
    assert await skypy.call(asker, "lua", "ask", "table") == ([1, "a"], ([1, "a"],))


async def test_a_remote_caller_gets_the_values_a_local_one_gets(node):
    await skypy.newservice(commands)
    host, port = await cluster.open(0)
    cluster.reload({"here": f"127.0.0.1:{port}"})
    assert await cluster.call("here", "@values", "pair") == (1, "a")
    assert await cluster.call("here", "@values", "pair_later") == (1, "a")
    assert await cluster.call("here", "@values", "table") == [1, "a"]
    proxy = await cluster.proxy("here", "@values")
    assert await skypy.rawcall(proxy, "lua", "pair") == (1, "a")


async def test_a_skynet_caller_reads_two_values_off_the_wire_for_a_tuple_and_one_table_for_a_list(node):
    await skypy.newservice(commands)
    _, port = await cluster.open(0)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        for session, cmd in enumerate(("pair", "table"), start=1):
            for packet in cluster_wire.encode_request("@values", session, skypy.pack(cmd)):
                await stream.send_all(packet)
        packets, responses = PacketDecoder(), cluster_wire.ResponseDecoder()
        answers: dict[int, bytes] = {}
        with trio.fail_after(5):
            while len(answers) < 2:
                for body in packets.feed(await stream.receive_some()):
                    response = responses.feed(body)
                    if response is not None:
                        assert response.ok
                        answers[response.session] = bytes(response.msg)
    assert answers[1] == skypy.pack(1, "a")  # Lua: local n, s = cluster.call(...)
    assert answers[2] == skypy.pack([1, "a"])  # Lua: one table {1, "a"}
