"""socket.forward: the socket server cuts a connection's input into netpack packets and
sends each on as a redirect would, on real loopback connections."""

import pytest
import trio
import trio.testing

import skypy
from skypy import netpack, socket
from skypy.lowlevel import queue_length
from skypy.testing import wait_until
from tests.helpers.peers import TIMEOUT, receive_all, socket_info
from tests.helpers.services import HeldConsumer


async def collector(seen: list[tuple[object, ...]]) -> None:
    """Records each "client" and "lua" message it gets: (session, source, *args)."""
    skypy.dispatch("client", lambda *message: seen.append(message))
    skypy.dispatch("lua", lambda *message: seen.append(message))


async def test_each_packet_goes_on_as_a_redirect_from_the_given_source(listener):
    seen: list[tuple[object, ...]] = []
    consumer = await skypy.newservice(collector, seen)
    client, id = await listener.connect()
    socket.forward(id, consumer, 77, "client", id)
    stream = b"".join(netpack.pack(body) for body in (b"one", b"", b"three" * 1000))
    async with client:
        start = 0
        for end in (1, 5, 7, 3000, len(stream)):  # reads end inside headers and bodies
            await client.send_all(stream[start:end])
            await wait_until(lambda end=end: socket_info(id)["read"] == end)
            start = end
        await wait_until(lambda: len(seen) == 3)
    assert seen == [(0, 77, id, b"one"), (0, 77, id, b""), (0, 77, id, b"three" * 1000)]
    assert socket_info(id)["forwarded_to"] == consumer


async def test_forwarding_with_a_head_puts_it_before_the_packet(listener):
    seen: list[tuple[object, ...]] = []
    watchdog = await skypy.newservice(collector, seen)
    client, id = await listener.connect()
    socket.forward(id, watchdog, 5, "lua", "socket", "data", id)
    async with client:
        await client.send_all(netpack.pack(b"hello"))
        await wait_until(lambda: len(seen) == 1)
    assert seen == [(0, 5, "socket", "data", id, b"hello")]


async def test_forwarding_again_sends_the_rest_elsewhere_and_loses_no_byte(listener):
    first: list[tuple[object, ...]] = []
    second: list[tuple[object, ...]] = []
    a = await skypy.newservice(collector, first)
    b = await skypy.newservice(collector, second)
    client, id = await listener.connect()
    socket.forward(id, a, 0, "client", id)
    head = netpack.pack(b"before") + netpack.pack(b"cut in half")[:6]
    async with client:
        await client.send_all(head)
        await wait_until(lambda: len(first) == 1 and socket_info(id)["read"] == len(head))
        socket.forward(id, b, 0, "client", id)
        await client.send_all(netpack.pack(b"cut in half")[6:])
        await wait_until(lambda: len(second) == 1)
    assert first == [(0, 0, id, b"before")]
    assert second == [(0, 0, id, b"cut in half")]


async def test_a_forwarded_connection_is_read_no_faster_than_its_consumer_takes_packets(listener):
    consumer = HeldConsumer()
    address = await skypy.newservice(consumer.main)
    client, id = await listener.connect()
    socket.forward(id, address, 0, "client", id, maxqueue=8)
    packets = 400  # 60 KB each, 24 MB: more than the kernel's loopback buffers hold
    sent = [0]

    async def flood() -> None:
        for i in range(packets):
            await client.send_all(netpack.pack(i.to_bytes(2, "big") + bytes(60000)))
            sent[0] += 1

    async with client, trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        with trio.fail_after(TIMEOUT):
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        # One slice of a read may pass it, and the PING asking when it has caught up waits there too.
        assert queue_length(address) <= 8 + 2
        assert socket_info(id)["paused"]
        assert sent[0] < packets  # TCP holds the client back
        consumer.released.set()
        with trio.fail_after(TIMEOUT):
            for i in range(packets):
                assert (await consumer.packets.receive())[:2] == i.to_bytes(2, "big")


async def test_an_abandoned_connection_is_read_as_bytes_by_its_next_owner_from_where_forwarding_stopped(listener):
    seen: list[tuple[object, ...]] = []
    consumer = await skypy.newservice(collector, seen)
    client, id = await listener.connect()
    socket.forward(id, consumer, 0, "client", id)
    half = netpack.pack(b"half")[:3]
    await client.send_all(half)
    await wait_until(lambda: socket_info(id)["read"] == len(half))
    socket.abandon(id)

    async def next_owner() -> None:
        async def read(session: int, source: int) -> None:
            skypy.ret(await socket.read(id, len(half) + 5))

        await socket.start(id)
        skypy.dispatch("lua", read)

    owner = await skypy.newservice(next_owner)
    async with client:
        await client.send_all(netpack.pack(b"raw"))
        with trio.fail_after(TIMEOUT):
            assert await skypy.call(owner, "lua") == half + netpack.pack(b"raw")  # no byte lost
    assert seen == []


async def test_a_packet_its_packer_refuses_closes_that_connection_with_a_log_line(listener, node):
    def pack(id: int, packet: bytes) -> bytes:
        if packet == b"bad":
            raise ValueError("no bad packets")
        return packet

    seen: list[tuple[object, ...]] = []
    consumer = await skypy.newservice(collector, seen)
    skypy.register_protocol("picky", 100, pack=pack)
    client, id = await listener.connect()
    socket.forward(id, consumer, 0, "picky", id)
    other, other_id = await listener.connect()
    socket.forward(other_id, consumer, 0, "client", other_id)
    async with client, other:
        await client.send_all(netpack.pack(b"bad"))
        assert await receive_all(client) == b""
        assert await node.wait_for_log(f"socket {id}: a forwarded packet failed to pack, connection closed")
        await other.send_all(netpack.pack(b"good"))
        await wait_until(lambda: seen == [(0, 0, other_id, b"good")])


async def test_only_a_tcp_connection_can_be_forwarded(listener):
    with pytest.raises(socket.SocketError, match=f"socket {listener.id} is not a TCP connection"):
        socket.forward(listener.id, skypy.self(), 0, "client")
