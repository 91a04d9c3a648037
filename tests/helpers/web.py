"""Helpers for the HTTP and WebSocket tests: a server in a service of its own, raw and curl clients."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import trio

from skypy import http
from skypy.ops import web
from skypy.testing import NodeProcess, NodeUnderTest

# Seconds a client waits for what it expects before the test fails.
TIMEOUT = 10.0


async def start_server(node: NodeUnderTest, app: http.Handler | None = None, **options) -> tuple[str, int]:
    """`http.serve(app, **options)` run by a service of its own; the (host, port) it serves."""
    where: list[tuple[str, int]] = []

    async def server() -> None:
        where.append(await http.serve(app, **options))

    await node.newservice(server)
    return where[0]


async def exchange(port: int, data: bytes, timeout: float = TIMEOUT) -> bytes:
    """Send `data` on a fresh connection and read everything until the server closes it."""
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(data)
            return await read_to_eof(stream)


async def read_to_eof(stream: trio.SocketStream) -> bytes:
    parts = []
    try:
        while chunk := await stream.receive_some(65536):
            parts.append(chunk)
    except trio.BrokenResourceError:
        pass  # a reset ends the stream too
    return b"".join(parts)


async def receive_until(stream: trio.SocketStream, ending: bytes, timeout: float = TIMEOUT) -> bytes:
    """Read until what came ends with `ending`."""
    data = b""
    with trio.fail_after(timeout):
        while not data.endswith(ending):
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise EOFError(f"closed after {data!r}")
            data += chunk
    return data


async def curl(*args: str) -> str:
    """Run curl (failing on an HTTP error is left to the test) and return what it printed."""
    assert shutil.which("curl"), "curl is not installed: .ci/run installs it"
    with trio.fail_after(TIMEOUT + 5):
        done = await trio.run_process(
            ["curl", "--silent", "--show-error", "--max-time", str(TIMEOUT), *args], capture_stdout=True
        )
    return done.stdout.decode()


async def start_webchat(node: NodeUnderTest, watchdog: int) -> tuple[str, int]:
    """The web chat (services/webchat.py) on a free port, in front of `watchdog`'s lobby: its (host, port)."""
    lobby = await node.call(watchdog, "lua", "lobby")
    webchat = await node.newservice("webchat", lobby)
    return await node.call(webchat, "lua", "open", "127.0.0.1", 0)


async def start_web_console(node: NodeUnderTest) -> str:
    """The node's web page (skypy.ops.web) on a free port, from a service of its own: its base URL."""
    where: list[tuple[str, int]] = []

    async def web_console() -> None:
        where.append(await web.serve("127.0.0.1", 0))

    await node.newservice(web_console)
    return f"http://{where[0][0]}:{where[0][1]}"


async def title_served_by_skypy_run(config: Path, cwd: Path, announced: str) -> str:
    """Run `skypy run CONFIG`; the <title> of the page at the URL it logs after `announced`; stop it cleanly."""
    process = await NodeProcess.start("run", str(config), cwd=cwd)
    try:
        line = await process.wait_for(announced)
        page = await curl(re.search(r"http://\S+/", line).group(0))
        return re.search(r"<title>(.*)</title>", page).group(1)
    finally:
        assert await process.stop() == 0
