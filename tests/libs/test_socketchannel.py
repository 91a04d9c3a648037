"""skypy.socketchannel against line-protocol servers run as services of the same node."""

import pytest
import trio

import skypy
from skypy import socket
from skypy.socketchannel import Channel, ChannelClosed, ChannelError


async def line_server(port: int = 0, *, reverse: int = 1, silent: int = 0) -> tuple[int, int]:
    """A service answering each line ``x`` with ``x!``; returns (its handle, its port).

    With `reverse` > 1 it reads that many lines before answering them last
    first; with `silent` > 0 it reads that many lines, answers none and
    closes the connection.
    """
    ports = []

    async def serve(id, address):
        await socket.start(id)
        try:
            while True:
                lines = [await socket.readline(id) for _ in range(max(reverse, silent))]
                if silent:
                    await socket.close(id)
                    return
                for line in reversed(lines):
                    if line.startswith(b"ERR"):
                        socket.write(id, b"-" + line + b"\n")
                    else:
                        socket.write(id, line + b"!\n")
        except socket.SocketClosed:
            await socket.close(id)

    async def main():
        id, _, real_port = await socket.listen("127.0.0.1", port)
        await socket.start(id, serve)
        ports.append(real_port)

    handle = await skypy.newservice(main)
    return handle, ports[0]


async def read_line(sock):
    """Order mode: one answer line; a leading '-' marks an error."""
    line = await sock.readline()
    return (False, line[1:]) if line.startswith(b"-") else (True, line)


async def read_session(sock):
    """Session mode: ``<session> <text>!`` lines."""
    session, _, text = (await sock.readline()).partition(b" ")
    return int(session), True, text


async def unused_port() -> int:
    id, _, port = await socket.listen("127.0.0.1", 0)
    await socket.close(id)
    return port


async def test_order_mode_matches_answers_first_in_first_out(node):
    _, port = await line_server()
    channel = Channel("127.0.0.1", port)
    results = {}
    async with trio.open_nursery() as nursery:
        for word in (b"a", b"b", b"c"):
            async def one(word=word):
                results[word] = await channel.request(word + b"\n", read_line)
            nursery.start_soon(one)
    assert results == {b"a": b"a!", b"b": b"b!", b"c": b"c!"}


async def test_order_mode_error_answer_raises_channel_error_and_keeps_the_connection(node):
    _, port = await line_server()
    channel = Channel("127.0.0.1", port)
    with pytest.raises(ChannelError, match="ERR") as failure:
        await channel.request(b"ERR nope\n", read_line)
    assert not isinstance(failure.value, ChannelClosed) and failure.value.value == b"ERR nope"
    assert await channel.request(b"next\n", read_line) == b"next!"


async def test_session_mode_matches_answers_by_session_in_any_order(node):
    _, port = await line_server(reverse=3)
    channel = Channel("127.0.0.1", port, response=read_session)
    results = {}
    async with trio.open_nursery() as nursery:
        for session in (1, 2, 3):
            async def one(session=session):
                results[session] = await channel.request(b"%d w%d\n" % (session, session), session)
            nursery.start_soon(one)
    assert results == {1: b"w1!", 2: b"w2!", 3: b"w3!"}


async def test_post_passes_the_answer_to_a_callback_without_waiting(node):
    _, port = await line_server()
    channel = Channel("127.0.0.1", port, response=read_session)
    answers = trio.Event()
    got = []

    def callback(ok, value):
        got.append((ok, value))
        answers.set()

    channel.post([b"7 ", b"parts\n"], 7, callback)
    assert channel.waiting(7)
    with trio.fail_after(5):
        await answers.wait()
    assert got == [(True, b"parts!")] and not channel.waiting(7)


@pytest.mark.parametrize("mode", ["order", "session"])
async def test_every_waiting_request_fails_when_the_connection_drops(node, mode):
    _, port = await line_server(silent=3)
    if mode == "order":
        channel = Channel("127.0.0.1", port)
        args = [(b"%d\n" % n, read_line) for n in range(3)]
    else:
        channel = Channel("127.0.0.1", port, response=read_session)
        args = [(b"%d x\n" % n, n) for n in range(1, 4)]
    failures = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for data, response in args:
                async def one(data=data, response=response):
                    with pytest.raises(ChannelClosed, match="dropped") as failure:
                        await channel.request(data, response)
                    failures.append(failure.value)
                nursery.start_soon(one)
    assert len(failures) == 3


@pytest.mark.parametrize("mode", ["order", "session"])
async def test_next_request_reconnects_after_the_server_restarts(node, mode):
    server, port = await line_server()
    if mode == "order":
        channel = Channel("127.0.0.1", port)
    else:
        channel = Channel("127.0.0.1", port, response=read_session)

    async def request(text):
        if mode == "order":
            return await channel.request(text + b"\n", read_line)
        return await channel.request(b"5 " + text + b"\n", 5)

    assert await request(b"one") == b"one!"
    await skypy.kill(server)
    with pytest.raises(ChannelClosed):
        await request(b"while down")  # on the dead connection, or refused: either way an error
    await line_server(port)
    assert await request(b"two") == b"two!"
    assert channel.connected


async def test_a_refused_main_host_falls_back_to_the_backup(node):
    _, port = await line_server()
    channel = Channel("127.0.0.1", await unused_port(), backup=[("127.0.0.1", port)])
    assert await channel.request(b"via backup\n", read_line) == b"via backup!"


async def test_failing_to_dial_fails_the_request_naming_every_host(node):
    dead, backup = await unused_port(), await unused_port()
    channel = Channel("127.0.0.1", dead, backup=[("127.0.0.1", backup)])
    with pytest.raises(ChannelClosed) as failure:
        await channel.request(b"x\n", read_line)
    assert f":{dead}" in str(failure.value) and f":{backup}" in str(failure.value)


async def test_connect_once_raises_and_connect_retries_until_the_server_is_up(node, autojump_clock):
    port = await unused_port()
    channel = Channel("127.0.0.1", port)
    with pytest.raises(ChannelClosed):
        await channel.connect(once=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(channel.connect)
        await trio.sleep(1)  # MockClock: lets connect() fail a few times first
        assert not channel.connected
        await line_server(port)
    assert channel.connected


async def test_auth_runs_on_every_new_connection_before_queued_requests(node):
    server, port = await line_server()
    authenticated = []

    async def auth(sock):
        socket.write(sock.id, b"hello\n")
        authenticated.append(await sock.readline())

    channel = Channel("127.0.0.1", port, auth=auth)
    assert await channel.request(b"first\n", read_line) == b"first!"
    await skypy.kill(server)
    with pytest.raises(ChannelClosed):
        await channel.request(b"while down\n", read_line)
    await line_server(port)
    assert await channel.request(b"second\n", read_line) == b"second!"
    assert authenticated == [b"hello!", b"hello!"]


async def test_changehost_moves_later_requests_to_the_new_server(node):
    _, first = await line_server()
    _, second = await line_server(reverse=1)
    channel = Channel("127.0.0.1", first, response=read_session)
    assert await channel.request(b"1 a\n", 1) == b"a!"
    channel.changehost("127.0.0.1", second)
    assert await channel.request(b"2 b\n", 2) == b"b!"


async def test_close_fails_waiters_and_refuses_later_requests(node):
    _, port = await line_server(reverse=2)
    channel = Channel("127.0.0.1", port, response=read_session)
    async with trio.open_nursery() as nursery:
        async def waiting():
            with pytest.raises(ChannelClosed, match="closed"):
                await channel.request(b"1 never answered alone\n", 1)
        nursery.start_soon(waiting)
        await channel.connect()
        await channel.close()
    with pytest.raises(ChannelClosed, match="closed"):
        await channel.request(b"2 late\n", 2)
