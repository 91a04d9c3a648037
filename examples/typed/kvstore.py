"""A key/value store service written against skypy's public API and checked with ``mypy --strict``.

Started by `embed.py` beside it (``service_path`` names this folder). Calls
take ``"lua"`` commands, as `skypy.dispatch_commands` routes them:

    await skypy.call(store, "lua", "set", key, value)        # the old value
    await skypy.call(store, "lua", "set", key, value, ttl)   # ... and it expires after ttl seconds
    await skypy.call(store, "lua", "get", key)               # the value, or None
    await skypy.call(store, "lua", "copy_to", other)         # set every key in store `other` too
    await skypy.call(store, "lua", "port")                   # where it serves "GET key" lines over TCP

Each launch runs this module in a namespace of its own, so `store` and
`port` belong to one service instance.
"""

from __future__ import annotations

from typing import Any

import skypy
from skypy import socket

store: dict[str, Any] = {}
port = 0


def get_value(key: str) -> Any:
    """The value of `key`, or None."""
    return store.get(key)


def set_value(key: str, value: Any, ttl: float | None = None) -> Any:
    """Set `key`, for `ttl` seconds if given; the value it had."""
    old = store.get(key)
    store[key] = value
    if ttl is not None:
        skypy.fork(expire, key, value, ttl)
    return old


async def expire(key: str, value: Any, ttl: float) -> None:
    """Drop `key` after `ttl` seconds, unless it was set to another value meanwhile."""
    await skypy.sleep(ttl)
    if key in store and store[key] is value:
        del store[key]


async def copy_to(other: int) -> int:
    """Set every key of this store in the store at `other`; how many were copied."""
    items = list(store.items())
    for key, value in items:
        await skypy.call(other, "lua", "set", key, value)
    return len(items)


def answer_port() -> None:
    """Answer with the TCP port, through `skypy.ret` rather than a return value."""
    skypy.ret(port)


async def serve(id: int, address: tuple[str, int]) -> None:
    """One TCP client: each ``GET key`` line is answered with the value's repr and a newline."""
    await socket.start(id)
    try:
        while True:
            line = (await socket.readline(id)).decode(errors="replace")
            command, _, key = line.partition(" ")
            reply = repr(store.get(key.strip())) if command == "GET" else f"unknown command {command!r}"
            socket.write(id, reply.encode() + b"\n")
    except socket.SocketClosed:
        pass  # the client hung up
    finally:
        await socket.close(id)


async def main() -> None:
    """Listen on a free port of 127.0.0.1, then take commands."""
    global port
    listen_id, _, port = await socket.listen("127.0.0.1", 0)
    await socket.start(listen_id, serve)
    skypy.dispatch_commands({"get": get_value, "set": set_value, "copy_to": copy_to, "port": answer_port})
