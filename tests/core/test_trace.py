"""skypy.trace: a traced request's sends and calls, and all they cause, carry its tag, across
services and cluster links; each hop is logged, and the console and page show them."""

from __future__ import annotations

import json
import re

import skypy
from skypy import cluster, websocket
from skypy.ops import console
from tests.helpers.web import start_web_console


async def recorder_of(seen: list[str | None]) -> None:
    """A service recording the trace tag each message it takes carries."""

    def note(session: int, source: int, *args: object) -> None:
        seen.append(skypy.tracetag())
        if session:
            skypy.ret()

    skypy.dispatch("lua", note)


async def test_a_traced_call_and_what_it_causes_carry_the_tag_and_each_hop_is_logged(node, logs):
    seen: list[str | None] = []
    leaf = await node.newservice(recorder_of, seen)

    async def middle() -> None:
        async def handle(session: int, source: int) -> None:
            seen.append(skypy.tracetag())
            skypy.send(leaf, "lua", "sent")
            await skypy.call(leaf, "lua", "called")
            skypy.ret()

        skypy.dispatch("lua", handle)

    mid = await node.newservice(middle)

    async def front() -> None:
        async def handle(session: int, source: int) -> None:
            tag = skypy.trace("order-7")
            await skypy.call(mid, "lua")
            skypy.ret(tag)

        skypy.dispatch("lua", handle)

    assert await node.call(await node.newservice(front), "lua") == "order-7"
    assert seen == ["order-7", "order-7", "order-7"]
    hops = [(skypy.address(source), text) for source, text in logs if text.startswith("<TRACE order-7>")]
    assert [text for _, text in hops] == [
        "<TRACE order-7> begin",
        f"<TRACE order-7> call {skypy.address(mid)}",
        f"<TRACE order-7> send {skypy.address(leaf)}",
        f"<TRACE order-7> call {skypy.address(leaf)}",
    ]


async def test_untraced_requests_carry_no_tag_and_a_trace_ends_with_its_request(node):
    seen: list[str | None] = []
    leaf = await node.newservice(recorder_of, seen)

    async def front() -> None:
        def handle(session: int, source: int, traced: bool) -> None:
            if traced:
                skypy.trace()
            skypy.send(leaf, "lua")
            skypy.ret()

        skypy.dispatch("lua", handle)

    addr = await node.newservice(front)
    for traced in (False, True, False):
        await node.call(addr, "lua", traced)
    await node.call(leaf, "lua")  # the sends before it have arrived
    assert seen[0] is None and re.fullmatch(rf"{skypy.address(addr)}-\d+", seen[1]) and seen[2:] == [None, None]


async def test_the_console_trace_command_lists_the_hops_of_one_trace(node):
    seen: list[str | None] = []
    leaf = await node.newservice(recorder_of, seen)

    async def front() -> None:
        async def handle(session: int, source: int, tag: str) -> None:
            skypy.trace(tag)
            await skypy.call(leaf, "lua")
            skypy.ret()

        skypy.dispatch("lua", handle)

    addr = await node.newservice(front)
    await node.call(addr, "lua", "first")
    await node.call(addr, "lua", "second")

    async def ask() -> list[str]:
        return "\n".join(await console.run("trace second")).splitlines()

    lines = await _run_in_service(node, ask)
    # Each line: seconds since the node started, the tag, who made the hop, the hop.
    assert [line.split(" ", 1)[1] for line in lines[:-1]] == [
        f"<TRACE second> {skypy.address(addr)} begin",
        f"<TRACE second> {skypy.address(addr)} call {skypy.address(leaf)}",
    ]
    assert lines[-1] == "<CMD OK>"


async def _run_in_service(node, fn):
    """What ``await fn()`` returns, run by a service of its own."""
    result: list = []

    async def runner() -> None:
        result.append(await fn())

    await node.newservice(runner)
    return result[0]


async def test_a_trace_crosses_a_cluster_link_and_the_page_shows_its_hops(node):
    seen: list[str | None] = []

    async def serve() -> None:
        host, port = await cluster.open(0)
        cluster.reload({"self": f"{host}:{port}"})
        cluster.register("leaf", await skypy.newservice(recorder_of, seen))

    await node.newservice(serve)

    async def front() -> None:
        async def handle(session: int, source: int) -> None:
            skypy.trace("remote-1")
            await cluster.call("self", "@leaf", "hello")
            skypy.ret()

        skypy.dispatch("lua", handle)

    await node.call(await node.newservice(front), "lua")
    assert seen == ["remote-1"]
    base = await start_web_console(node)
    ws = await websocket.connect(base.replace("http:", "ws:") + "/live")
    ws.send(json.dumps({"op": "trace", "tag": "remote-1"}))
    while (answer := json.loads(await ws.receive()))["type"] != "trace":
        pass
    texts = [text for _, _, text in answer["hops"]]
    # Sent to the link's sender, which writes it on the wire; the peer's agent hands it on.
    assert texts[:2] == ["begin", "call cluster node [self]"]
    assert texts[-1].startswith("call :")
    await ws.close()
