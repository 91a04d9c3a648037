"""A trio program that runs a skypy node, written against the public API and checked with ``mypy --strict``.

    python examples/typed/embed.py

Starts two `kvstore` services (from this folder), calls and sends to them
as the node's host service, reads one over TCP with plain trio, runs a
third under a supervisor that brings it back when killed, and exits 0 once
every check has passed.
"""

from __future__ import annotations

from pathlib import Path

import trio

import skypy
from skypy import supervisor

HERE = Path(__file__).resolve().parent


async def read_line(stream: trio.SocketStream) -> bytes:
    """The next line from `stream`, without its newline."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = await stream.receive_some()
        if not chunk:
            raise EOFError(f"the server closed the connection after {data!r}")
        data += chunk
    return data[:-1]


async def main() -> None:
    """Run the node for the block; every check fails with AssertionError."""
    with trio.fail_after(10):
        async with skypy.open_node(service_path=[str(HERE)]) as node:
            first = await node.newservice("kvstore")
            second = await node.newservice("kvstore")

            assert await node.call(first, "lua", "set", "greeting", "hello") is None
            assert await node.call(first, "lua", "set", "greeting", "hi") == "hello"
            node.send(first, "lua", "set", "fleeting", "soon gone", 0.05)
            assert await node.call(first, "lua", "get", "fleeting") == "soon gone"

            copied: int = await node.call(first, "lua", "copy_to", second)
            assert copied == 2
            assert await node.call(second, "lua", "get", "greeting") == "hi"

            port: int = await node.call(first, "lua", "port")
            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                await stream.send_all(b"GET greeting\n")
                assert await read_line(stream) == b"'hi'"

            await trio.sleep(0.2)
            assert await node.call(first, "lua", "get", "fleeting") is None

            await node.kill(first)
            try:
                await node.call(first, "lua", "get", "greeting")
            except skypy.CallError:
                pass
            else:
                raise AssertionError("a killed service still answered")

            sup = await supervisor.start([supervisor.child("kvstore", name=".kv", crash_policy="exit")])
            kv = node.localname(".kv")
            assert kv is not None
            await node.call(".kv", "lua", "set", "greeting", "hi")
            reasons: list[str] = []
            skypy.monitor(kv, lambda handle, reason: reasons.append(reason))
            await node.kill(".kv")
            while not reasons or node.localname(".kv") in (None, kv):
                await skypy.yield_()
            assert reasons == [skypy.ExitReason.KILLED]
            assert await node.call(".kv", "lua", "get", "greeting") is None  # a new instance, fresh state
            listed: list[supervisor.ChildInfo] = await supervisor.children(sup)
            assert [(c.id, c.handle, c.restart) for c in listed] == [(".kv", node.localname(".kv"), "permanent")]
    print("typed example: ok")


if __name__ == "__main__":
    trio.run(main)
