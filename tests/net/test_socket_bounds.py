"""Bounds on what a socket holds for a service: pause and resume, the unread-bytes
bound, and readline's maximum, on real loopback connections."""

import pytest
import trio
import trio.testing

import skypy
from skypy import socket
from tests.helpers.peers import TIMEOUT, pattern, receive_all, socket_info

# More than the kernel's loopback buffers take, so a peer that is not read blocks.
FLOOD = 24 << 20
# What one recv may take past a bound before it is noticed (the reader's largest read).
READ_MAX = 1 << 20


async def send_in_background(nursery: trio.Nursery, client: trio.SocketStream, data: bytes) -> list[int]:
    """Send `data` from a task of its own; the returned list holds how much has gone."""
    sent = [0]

    async def send() -> None:
        view = memoryview(data)
        while sent[0] < len(data):
            chunk = view[sent[0] : sent[0] + (256 << 10)]
            await client.send_all(chunk)
            sent[0] += len(chunk)

    nursery.start_soon(send)
    return sent


async def read_exactly(id: int, n: int) -> bytes:
    parts = []
    with trio.fail_after(TIMEOUT):
        while n:
            part = await socket.read(id)
            parts.append(part)
            n -= len(part)
    return b"".join(parts)


async def test_a_paused_connection_is_not_read_until_resumed(listener):
    client, id = await listener.connect()
    socket.pause(id)
    data = pattern(FLOOD)
    async with trio.open_nursery() as nursery:
        sent = await send_in_background(nursery, client, data)
        with trio.fail_after(10):
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        assert socket_info(id)["read"] == 0 and socket_info(id)["paused"]
        assert sent[0] < FLOOD  # held back by TCP
        socket.resume(id)
        assert await read_exactly(id, FLOOD) == data


async def test_unread_bytes_past_the_bound_pause_the_connection_until_read(listener):
    client, id = await listener.connect()
    data = pattern(FLOOD)
    async with trio.open_nursery() as nursery:
        sent = await send_in_background(nursery, client, data)
        with trio.fail_after(10):
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        assert socket_info(id)["read"] <= socket.BUFFER_MAX + READ_MAX
        assert sent[0] < FLOOD
        assert await read_exactly(id, FLOOD) == data


async def test_a_read_of_more_than_the_bound_still_gets_all_it_asked_for(listener):
    client, id = await listener.connect()
    data = pattern(4 * socket.BUFFER_MAX)
    async with trio.open_nursery() as nursery:
        await send_in_background(nursery, client, data)
        with trio.fail_after(TIMEOUT):
            assert await socket.read(id, len(data)) == data


async def test_a_line_over_max_raises_line_too_long_and_closes_the_connection(listener):
    client, id = await listener.connect()
    await client.send_all(b"x" * 200)  # no newline yet
    with pytest.raises(socket.LineTooLong, match=f"socket {id}: over 100 bytes"):
        with trio.fail_after(TIMEOUT):
            await socket.readline(id, max=100)
    socket.write(id, b"too long\n")  # written before the reader suspends: it still goes out
    assert await receive_all(client) == b"too long\n"


async def test_readline_takes_a_line_up_to_a_raised_max(listener):
    client, id = await listener.connect()
    line = b"y" * (3 * socket.MAX_LINE)
    async with trio.open_nursery() as nursery:
        await send_in_background(nursery, client, line + b"\n")
        with trio.fail_after(TIMEOUT):
            assert await socket.readline(id, max=len(line)) == line


async def test_a_whole_line_over_max_is_line_too_long_too(listener):
    client, id = await listener.connect()
    await client.send_all(b"x" * 200 + b"\n")
    with trio.fail_after(TIMEOUT):
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)  # all of it buffered before the read
    with pytest.raises(socket.LineTooLong):
        with trio.fail_after(TIMEOUT):
            await socket.readline(id, max=100)
    assert await receive_all(client) == b""


async def test_a_paused_socket_given_to_another_service_is_read_by_it(listener):
    client, id = await listener.connect()
    socket.pause(id)
    socket.abandon(id)
    await client.send_all(b"for the new owner")

    async def reader():
        async def read(session, source):
            await socket.start(id)
            skypy.ret(await socket.read(id, 17))

        skypy.dispatch("lua", read)

    owner = await skypy.newservice(reader)
    with trio.fail_after(TIMEOUT):
        assert await skypy.call(owner, "lua") == b"for the new owner"
