"""skypy.websocket: the server side from an http.Router and the client, against each other and trio-websocket."""

import pytest
import trio
import trio_websocket

import skypy
from skypy import http, websocket
from skypy.testing import wait_until
from tests.helpers.web import TIMEOUT, start_server


def make_app() -> http.Router:
    app = http.Router()

    @app.websocket("/echo")
    async def echo(ws: websocket.WebSocket) -> None:
        while True:
            ws.send(await ws.receive())

    @app.websocket("/bye")
    async def bye(ws: websocket.WebSocket) -> None:
        await ws.receive()
        await ws.close(4000, "see you")

    @app.websocket("/broken")
    async def broken(ws: websocket.WebSocket) -> None:
        await ws.receive()
        raise RuntimeError("the handler broke")

    return app


@pytest.fixture
async def url(node):
    host, port = await start_server(node, make_app(), max_message_size=1024)
    return f"ws://{host}:{port}"


async def test_a_skypy_client_and_server_exchange_text_and_binary(url):
    ws = await websocket.connect(f"{url}/echo")
    ws.send("text")
    ws.send(b"\x00binary")
    assert [await ws.receive(), await ws.receive()] == ["text", b"\x00binary"]
    await ws.close()


async def test_the_close_code_and_reason_reach_the_reading_coroutine(url):
    ws = await websocket.connect(f"{url}/bye")
    ws.send("go")
    with pytest.raises(websocket.Closed) as closed:
        await ws.receive()
    assert (closed.value.code, closed.value.reason) == (4000, "see you")


async def test_send_after_the_close_raises_closed(url):
    ws = await websocket.connect(f"{url}/echo")
    await ws.close(1000, "done")
    with pytest.raises(websocket.Closed, match="1000 done"):
        ws.send("late")


async def test_a_peer_that_vanishes_raises_closed_1006(node, url):
    received = trio.Event()
    codes = []

    async def server_side(ws: websocket.WebSocket) -> None:
        received.set()
        try:
            await ws.receive()
        except websocket.Closed as exc:
            codes.append(exc.code)

    app = http.Router()
    app.websocket("/v")(server_side)
    host, port = await start_server(node, app)
    ws = await websocket.connect(f"ws://{host}:{port}/v")
    with trio.fail_after(TIMEOUT):
        await received.wait()
    skypy.socket.shutdown(ws.id)  # the TCP connection ends with no close frame
    await wait_until(lambda: codes == [1006])
    await skypy.socket.close(ws.id)


async def test_trio_websocket_talks_to_the_server(url):
    with trio.fail_after(TIMEOUT):
        async with trio_websocket.open_websocket_url(f"{url}/echo") as ws:
            await ws.send_message("hello")
            await ws.send_message(b"bytes")
            assert [await ws.get_message(), await ws.get_message()] == ["hello", b"bytes"]


async def test_pings_are_answered_without_user_code(url):
    with trio.fail_after(TIMEOUT):
        async with trio_websocket.open_websocket_url(f"{url}/echo") as ws:
            await ws.ping(b"are you there")  # returns once the pong came


async def test_a_message_over_the_limit_closes_the_connection_with_1009(url):
    with trio.fail_after(TIMEOUT):
        async with trio_websocket.open_websocket_url(f"{url}/echo") as ws:
            await ws.send_message(b"x" * 2048)
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await ws.get_message()
    assert closed.value.reason.code == 1009


async def test_connect_to_a_path_that_is_not_a_websocket_names_the_host(url):
    host_port = url.removeprefix("ws://")
    with pytest.raises(websocket.HandshakeError, match=host_port):
        await websocket.connect(f"{url}/nowhere")


async def test_a_handler_that_raises_closes_with_1011_and_a_log_line(node, url):
    ws = await websocket.connect(f"{url}/broken")
    ws.send("go")
    with pytest.raises(websocket.Closed) as closed, trio.fail_after(TIMEOUT):
        await ws.receive()
    assert closed.value.code == 1011
    assert "RuntimeError: the handler broke" in await node.wait_for_log("http: WebSocket /broken: handler raised")
