"""skynet's close protocol on real sockets; each numbered section tests one rule:

1. close with nothing queued closes the fd, posts CLOSE and returns.
2. close sends everything queued first, to a slow reader too, then returns.
3. While a socket closes (half-closed), the peer's data is dropped and writes are refused.
4. A coroutine blocked in read on it is woken (SocketClosed) before close returns.
5. shutdown closes at once, dropping the unsent rest; close then releases the id.
6. The peer's FIN ends reads, not writes: a reply still goes out in full.
7. Closing twice, or an unknown id, does nothing.
8. close(timeout) shuts down a peer that has not read everything when the time is up.
9. An exiting service closes every socket it owns; socket events for ids a
   service does not own are answered as skynet answers them.
10. WARNING at 1 MiB queued and each doubling, 0 once drained; limit closes a
    peer that floods the receive buffer.
11. Connecting and closing leaks no fd.
"""

import os
import random

import pytest
import trio
import trio.testing

import skypy
from skypy import socket
from skypy._net.pool import SocketPool
from skypy._net.table import CLOSE, DATA, ERROR
from skypy.testing import wait_until
from tests.helpers.peers import pattern, queue_until, read_slowly, receive_all, socket_info

MiB = 1 << 20


# 1 -------------------------------------------------------------------------------


async def test_close_with_nothing_queued_closes_the_fd_posts_close_and_returns(listener):
    client, id = await listener.connect()
    closes = []
    socket.onclose(id, closes.append)
    await socket.close(id)
    assert closes == [id]
    assert socket_info(id) is None and socket.invalid(id)
    assert await receive_all(client) == b""


# 2 -------------------------------------------------------------------------------


async def test_close_delivers_every_queued_byte_to_a_slow_reader_before_returning(listener):
    client, id = await listener.connect_blocking()
    sent = queue_until(id, 8 * MiB)
    order = []
    socket.onclose(id, lambda id: order.append("CLOSE"))
    async with trio.open_nursery() as nursery:
        received = []

        async def peer():
            received.append(await trio.to_thread.run_sync(read_slowly, client))
            order.append("peer saw EOF")

        nursery.start_soon(peer)
        assert socket_info(id)["queued"] >= 8 * MiB
        await socket.close(id)
        order.append("close returned")
    client.close()
    assert received[0] == sent
    assert order[:2] == ["CLOSE", "close returned"]


# 3 -------------------------------------------------------------------------------


async def test_while_halfclosed_peer_data_is_discarded_and_writes_are_refused(listener, node):
    client, id = await listener.connect()
    sent = queue_until(id, 1 * MiB)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(socket.close, id)
        await wait_until(lambda: socket_info(id)["state"] == "halfclose")
        assert socket.write(id, b"too late") is False
        read_before = socket_info(id)["read"]
        await client.send_all(b"ignored by a closing socket")
        await wait_until(lambda: socket_info(id)["read"] > read_before)
        assert len(SocketPool.mine().socks[id].buffer) == 0
        assert await receive_all(client) == sent


# 4 -------------------------------------------------------------------------------


async def test_reader_blocked_in_read_is_woken_before_the_closer(listener):
    client, id = await listener.connect(start=False)
    order = []
    done = trio.Event()

    async def service(id):
        await socket.start(id)

        async def reader():
            assert await socket.read(id, 2) == b"ab"  # so "c" is surely buffered
            skypy.wakeup("closer")  # takes effect when the next read blocks
            try:
                await socket.read(id, 10)
            except socket.SocketClosed as exc:
                order.append(("reader woken", exc.rest))

        async def closer():
            await skypy.wait("closer")
            await socket.close(id)
            order.append("closer returned")
            done.set()

        skypy.fork(reader)
        skypy.fork(closer)

    await client.send_all(b"abc")
    await skypy.newservice(service, id)
    with trio.fail_after(5):
        await done.wait()
    assert order == [("reader woken", b"c"), "closer returned"]


@pytest.mark.parametrize("seed", range(25))
async def test_many_readers_and_closers_interleaved_never_hang(listener, seed):
    """Random readers, writers and closers on a few sockets; a blocked reader always
    wakes before the close that ended its read returns, and every id is released."""
    rng = random.Random(seed)
    pairs = [await listener.connect(start=False) for _ in range(3)]
    ids = [id for _, id in pairs]
    log = []  # (step, what, id, coroutine number)
    finished = trio.Event()

    async def service():
        for id in ids:
            await socket.start(id)
        plans = []
        for id in ids:
            plans += [("close", id)] + [(rng.choice(["read", "write", "close"]), id) for _ in range(3)]
        rng.shuffle(plans)
        running = len(plans)

        async def act(n, kind, id):
            nonlocal running
            for _ in range(rng.randrange(3)):
                await skypy.yield_()
            log.append(("start", kind, id, n))
            try:
                if kind == "read":
                    how = rng.choice(["n", "any", "line", "all"])
                    if how == "n":
                        await socket.read(id, rng.randrange(1, 40))
                    elif how == "any":
                        await socket.read(id)
                    elif how == "line":
                        await socket.readline(id)
                    else:
                        await socket.readall(id)
                elif kind == "write":
                    socket.write(id, b"w" * rng.randrange(1, 100_000))
                else:
                    how = rng.choice(["close", "timeout", "shutdown"])
                    if how == "shutdown":
                        socket.shutdown(id)
                    await socket.close(id, timeout=0.5 if how == "timeout" else None)
            except (socket.SocketClosed, socket.SocketError):
                pass
            log.append(("end", kind, id, n))
            running -= 1
            if running == 0:
                finished.set()

        for n, (kind, id) in enumerate(plans):
            skypy.fork(act, n, kind, id)

    async def peer(client):
        try:
            for _ in range(rng.randrange(4)):
                await client.send_all(rng.choice([b"line\n", b"x" * 30, b"partial"]))
                await trio.sleep(0)
            if rng.random() < 0.3:
                await client.send_eof()
            await receive_all(client)
        except trio.BrokenResourceError:
            pass  # the service shut the connection down first

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for client, _ in pairs:
                nursery.start_soon(peer, client)
            await skypy.newservice(service)
            await finished.wait()
            nursery.cancel_scope.cancel()  # peers still draining; closing under them races
        for client, _ in pairs:
            await client.aclose()

    for (step, kind, id, n) in log:
        if step == "start" and kind == "close":
            begun = log.index((step, kind, id, n))
            returned = log.index(("end", kind, id, n))
            blocked = [r for (s, k, i, r) in log[:begun] if s == "start" and k == "read" and i == id
                       and log.index(("end", "read", id, r)) > begun]
            for r in blocked:
                assert log.index(("end", "read", id, r)) < returned
    assert all(socket_info(id) is None for id in ids)


# 5 -------------------------------------------------------------------------------


async def test_shutdown_drops_the_unsent_rest_and_close_releases_the_id(listener):
    client, id = await listener.connect()
    sent = queue_until(id, 8 * MiB)
    closes = []
    socket.onclose(id, closes.append)
    socket.shutdown(id)
    assert socket_info(id)["state"] == "closed"
    received = await receive_all(client)
    assert len(received) < len(sent) and sent.startswith(received)
    await wait_until(lambda: closes == [id])
    assert not socket.invalid(id) and socket.disconnected(id)
    await socket.close(id)
    assert socket_info(id) is None and socket.invalid(id)


# 6 -------------------------------------------------------------------------------


async def test_reply_arrives_in_full_after_the_peer_half_closes(listener):
    client, id = await listener.connect()
    reply = pattern(4 * MiB)
    await client.send_all(b"request")
    await client.send_eof()
    assert await socket.readall(id) == b"request"
    assert socket.write(id, reply)
    async with trio.open_nursery() as nursery:
        received = []

        async def peer():
            received.append(await receive_all(client))

        nursery.start_soon(peer)
        await socket.close(id)
    assert received == [reply]


# 7 -------------------------------------------------------------------------------


async def test_double_close_and_close_of_an_unknown_id_do_nothing(listener, logs):
    client, id = await listener.connect()
    await socket.close(id)
    await socket.close(id)
    await socket.close(987654)
    assert await receive_all(client) == b""
    assert not [text for _, text in logs if "socket" in text]


# 8 -------------------------------------------------------------------------------


async def test_close_with_timeout_shuts_down_a_peer_that_never_reads(listener, autojump_clock):
    client, id = await listener.connect()
    sent = queue_until(id, 4 * MiB)
    began = trio.current_time()
    await socket.close(id, timeout=5)
    assert trio.current_time() - began == pytest.approx(5)
    assert socket_info(id) is None
    received = await receive_all(client)
    assert len(received) < len(sent) and sent.startswith(received)


# 9 -------------------------------------------------------------------------------


async def test_an_exiting_service_closes_every_socket_it_owns(listener):
    started_client, started = await listener.connect(start=False)
    ids = [started]

    async def service(id):
        await socket.start(id)
        socket.write(id, b"goodbye")
        own_listener, _, _ = await socket.listen("127.0.0.1", 0)
        ids.append(own_listener)
        skypy.dispatch("lua", lambda session, source: skypy.exit())

    skypy.send(await skypy.newservice(service, started), "lua")
    assert await receive_all(started_client) == b"goodbye"
    await wait_until(lambda: all(socket_info(id) is None for id in ids))


async def test_events_for_ids_a_service_does_not_own_are_handled_as_skynet_does(listener, logs):
    refused_client, refused = await listener.connect(start=False)
    erring_client, erring = await listener.connect(start=False)
    me = skypy.self()
    skypy.redirect(me, 0, "socket", 0, DATA, 424242, b"stray")
    skypy.redirect(me, 0, "socket", 0, CLOSE, refused)
    skypy.redirect(me, 0, "socket", 0, ERROR, erring, "simulated")
    assert await receive_all(refused_client) == b""  # CLOSE was answered by close
    assert await receive_all(erring_client) == b""  # ERROR by shutdown
    assert (me, "socket: drop package from 424242") in logs
    assert any(text.startswith(f"socket: error on unknown {erring}") for _, text in logs)
    assert socket_info(refused) is None


# 10 ------------------------------------------------------------------------------


async def test_warning_at_one_mib_queued_each_doubling_and_zero_when_drained(listener):
    client, id = await listener.connect()
    warnings = []
    socket.warning(id, lambda id, queued: warnings.append(queued))
    sent = queue_until(id, 4 * MiB + 1)
    await skypy.yield_()  # the WARNINGs are queued behind this
    assert [queued.bit_length() - 1 for queued in warnings] == [20, 21, 22]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(socket.close, id)
        assert await receive_all(client) == sent
    assert warnings[-1] == 0 and len(warnings) == 4


async def test_limit_closes_a_peer_that_floods_the_receive_buffer(listener, logs):
    client, id = await listener.connect()
    socket.limit(id, 1000)
    closes = []
    socket.onclose(id, closes.append)
    await client.send_all(b"f" * 5000)
    assert await receive_all(client) == b""
    await wait_until(lambda: closes == [id])
    assert any(text.startswith(f"socket buffer overflow: fd={id} size=") for _, text in logs)


# 11 ------------------------------------------------------------------------------


async def test_a_thousand_connect_close_cycles_leak_no_fd(listener):
    before = len(os.listdir("/proc/self/fd"))
    for n in range(1000):
        id = await socket.open(listener.host, listener.port)
        accepted = await listener.accepted()
        await socket.start(accepted)
        first, second = (id, accepted) if n % 2 else (accepted, id)
        await socket.close(first)
        with pytest.raises(socket.SocketClosed):
            await socket.read(second)
        await socket.close(second)
    assert len(os.listdir("/proc/self/fd")) == before
    assert [entry["id"] for entry in socket.info()] == [listener.id]
