"""Coroutines reading their sockets, interleaved with abandon, close, pause, kill and
trio timeouts: every guarantee of the socket server holds for them. Each reader here
reads once before the read under test, so that it is a coroutine back for more."""

import os

import pytest
import trio
import trio.testing

import skypy
from skypy import socket
from skypy._api.messages import running
from skypy._net.server import SocketServer
from skypy.testing import wait_until
from tests.helpers.peers import pattern, queue_until, read_slowly, receive_all, socket_info


async def first_read_then_waiting(node, client, id):
    """Send the b"x" a reader reads first, and wait until it waits for its next read."""
    await client.send_all(b"x")
    await settled(node, id)


async def settled(node, id):
    """Wait until the reader of `id` has taken what was sent and every task is blocked again."""
    server = SocketServer.of(node.node)
    await wait_until(lambda: (conn := server.table.get(id)) is None or conn.bytes_read >= 1)
    await trio.testing.wait_all_tasks_blocked()


async def test_abandon_wakes_a_reader_in_another_coroutine_and_the_new_owner_reads_on(listener, node):
    client, id = await listener.connect(start=False)
    woken = trio.Event()

    async def old_owner(id):
        await socket.start(id)

        async def reader():
            assert await socket.read(id) == b"x"
            with pytest.raises(socket.SocketClosed):
                await socket.read(id)
            woken.set()

        def give_up(session, source):
            socket.abandon(id)
            skypy.ret()

        skypy.fork(reader)
        skypy.dispatch("lua", give_up)

    async def new_owner(id):
        await socket.start(id)

        async def read(session, source):
            skypy.ret(await socket.read(id, 5))

        skypy.dispatch("lua", read)

    old = await skypy.newservice(old_owner, id)
    await first_read_then_waiting(node, client, id)
    await skypy.call(old, "lua")
    with trio.fail_after(5):
        await woken.wait()  # at once, with no byte arriving to wake it
    new = await skypy.newservice(new_owner, id)
    await client.send_all(b"after")
    assert await skypy.call(new, "lua") == b"after"


async def test_a_reader_that_waits_for_something_else_still_hears_the_peer_close(listener, node):
    client, id = await listener.connect(start=False)
    closed = trio.Event()

    async def service(id):
        await socket.start(id)
        socket.onclose(id, lambda id: closed.set())

        async def reader():
            assert await socket.read(id) == b"a"
            assert await socket.read(id) == b"b"
            await skypy.wait("never")

        skypy.fork(reader)

    await skypy.newservice(service, id)
    await client.send_all(b"a")
    await settled(node, id)
    await client.send_all(b"b")
    await trio.testing.wait_all_tasks_blocked()
    await client.aclose()
    with trio.fail_after(5):
        await closed.wait()


async def test_a_reader_in_unlocked_still_hears_the_peer_and_reads_the_rest_after(listener, node):
    client, id = await listener.connect(start=False)
    closed, resume, done = trio.Event(), trio.Event(), trio.Event()
    got = []

    async def service(id):
        await socket.start(id)
        socket.onclose(id, lambda id: closed.set())

        async def reader():
            got.append(await socket.read(id, 1))
            got.append(await socket.read(id, 1))
            await skypy.unlocked(resume.wait())
            got.append(await socket.readall(id))
            done.set()

        skypy.fork(reader)

    await skypy.newservice(service, id)
    await client.send_all(b"a")
    await settled(node, id)
    await client.send_all(b"b")
    await wait_until(lambda: got == [b"a", b"b"])
    await client.send_all(b"cd")
    await client.aclose()
    with trio.fail_after(5):
        await closed.wait()  # while the reader is still in unlocked
    resume.set()
    with trio.fail_after(5):
        await done.wait()
    assert got == [b"a", b"b", b"cd"]


async def test_bytes_already_posted_are_read_in_order_with_those_that_follow(listener, node):
    client, id = await listener.connect(start=False)
    busy_until = trio.Event()
    got = []
    done = trio.Event()

    async def service(id):
        await socket.start(id)

        async def reader():
            await busy_until.wait()  # a plain trio wait keeps the turn: DATA queues meanwhile
            for _ in range(3):
                got.append(await socket.read(id, 3))
            done.set()

        skypy.fork(reader)

    await skypy.newservice(service, id)
    await client.send_all(b"one")
    await wait_until(lambda: socket_info(id)["read"] == 3)
    await client.send_all(b"two")
    await wait_until(lambda: socket_info(id)["read"] == 6)
    busy_until.set()
    await settled(node, id)
    await client.send_all(b"six")
    with trio.fail_after(5):
        await done.wait()
    assert got == [b"one", b"two", b"six"]


async def test_a_read_cancelled_by_a_trio_timeout_leaves_the_coroutine_holding_the_turn(
    listener, node, autojump_clock
):
    client, id = await listener.connect(start=False)
    seen = []
    timed_out, done = trio.Event(), trio.Event()

    async def service(id):
        await socket.start(id)

        async def reader():
            assert await socket.read(id) == b"x"
            with trio.move_on_after(1):
                await socket.read(id)
            seen.append(running().holds_turn())
            timed_out.set()
            seen.append(await socket.read(id))
            done.set()

        skypy.fork(reader)

    await skypy.newservice(service, id)
    await first_read_then_waiting(node, client, id)
    with trio.fail_after(5):
        await timed_out.wait()
    await client.send_all(b"late")
    with trio.fail_after(5):
        await done.wait()
    assert seen == [True, b"late"]


async def test_a_closing_socket_keeps_its_reader_blocked_until_the_queue_has_drained(listener, node):
    client, id = await listener.connect_blocking()
    socket.abandon(id)
    order = []
    done = trio.Event()

    async def service(id):
        await socket.start(id)
        written = queue_until(id, 1 << 20)

        async def reader():
            assert await socket.read(id) == b"x"
            try:
                await socket.read(id)
            except socket.SocketClosed as exc:
                order.append(("reader woken", exc.rest))

        async def closer():
            await socket.close(id)
            order.append("closer returned")
            done.set()

        def close_it(session, source):
            skypy.fork(closer)
            skypy.ret(len(written))

        skypy.fork(reader)
        skypy.dispatch("lua", close_it)

    owner = await skypy.newservice(service, id)
    client.sendall(b"x")
    await settled(node, id)
    written = await skypy.call(owner, "lua")
    await wait_until(lambda: socket_info(id)["state"] == "halfclose")
    client.sendall(b"discarded, and no reason to wake the reader")
    await wait_until(lambda: socket_info(id)["read"] > 0)
    assert order == []
    received = await trio.to_thread.run_sync(read_slowly, client)
    client.close()
    with trio.fail_after(10):
        await done.wait()
    assert len(received) == written
    assert order == [("reader woken", b""), "closer returned"]


async def test_many_connections_read_by_coroutines_of_one_busy_service_echo_in_order(listener):
    clients = 30
    rounds = 20
    spinning = True

    async def service():
        async def echo(id):
            await socket.start(id)
            try:
                while True:
                    socket.write(id, await socket.read(id))
            except socket.SocketClosed:
                await socket.close(id)

        async def busy():
            # Keeps the turn changing hands, so coroutines back from their
            # fds often find it taken and must wait for it.
            while spinning:
                await skypy.yield_()

        skypy.fork(busy)
        for _ in range(clients):
            skypy.fork(echo, await listener.accepted())

    async def client(n):
        stream = await trio.open_tcp_stream(listener.host, listener.port)
        for r in range(rounds):
            message = pattern(100 + n * 7 + r)
            await stream.send_all(message)
            echoed = b""
            while len(echoed) < len(message):
                echoed += await stream.receive_some(1 << 16)
            assert echoed == message
        await stream.aclose()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(skypy.newservice, service)
            for n in range(clients):
                nursery.start_soon(client, n)
    spinning = False


async def test_a_service_killed_while_its_coroutines_read_leaks_no_fd(listener, node):
    before = len(os.listdir("/proc/self/fd"))
    pairs = [await listener.connect(start=False) for _ in range(20)]

    async def service(ids):
        async def reader(id):
            await socket.start(id)
            try:
                while True:
                    await socket.read(id)
            except socket.SocketClosed:
                pass  # woken by the kill's close: see the next test

        for id in ids:
            skypy.fork(reader, id)

    owner = await skypy.newservice(service, [id for _, id in pairs])
    for client, _ in pairs:
        await client.send_all(b"x")
    await trio.testing.wait_all_tasks_blocked()
    await skypy.kill(owner)
    for client, _ in pairs:
        assert await receive_all(client) == b""
        await client.aclose()
    await wait_until(lambda: all(socket_info(id) is None for _, id in pairs))
    assert len(os.listdir("/proc/self/fd")) == before


async def test_a_service_killed_while_a_coroutine_reads_ends_without_a_crash(listener, node):
    """As with a read through the reader task: the kill ends the coroutine, which runs no further."""
    client, id = await listener.connect(start=False)

    async def service(id):
        async def reader():
            await socket.start(id)
            while True:
                await socket.read(id)

        skypy.fork(reader)

    owner = await skypy.newservice(service, id)
    await first_read_then_waiting(node, client, id)
    await skypy.kill(owner)
    await client.aclose()
    await wait_until(lambda: socket_info(id) is None)
    assert node.crashes == []


async def test_a_service_killed_while_reading_still_discards_what_the_peer_sends_until_flushed(listener, node):
    client, id = await listener.connect(start=False)
    written = []

    async def service(id):
        async def reader():
            await socket.start(id)
            # More than the kernel buffers hold, so the flush cannot end
            # before the peer reads, which it does only once it has sent.
            written.append(queue_until(id, 16 << 20))
            assert await socket.read(id) == b"x"
            await socket.read(id)

        skypy.fork(reader)

    owner = await skypy.newservice(service, id)
    await first_read_then_waiting(node, client, id)
    await skypy.kill(owner)
    with trio.fail_after(10):
        # More than the kernel buffers hold: it goes through only if the
        # closing socket keeps reading (and dropping) it.
        await client.send_all(bytes(16 << 20))
        assert await receive_all(client) == written[0]
    await client.aclose()
