"""The gate's bounds: a client is read no faster than its agent keeps up, an idle
client is closed (but not one held back for its agent), a client whose agent is
gone is closed, and listening on every interface is logged."""

import trio
import trio.testing

import skypy
from skypy import netpack
from skypy.lowlevel import queue_length
from skypy.testing import FakeClient
from tests.helpers.services import HeldConsumer
from tests.services.test_gate import Watchdog

MAXQUEUE = 8
PACKET = bytes(60000)
PACKETS = 400  # 24 MB: more than the kernel's loopback buffers hold


async def flood(client, sent):
    """Send PACKETS numbered packets; `sent[0]` counts those the kernel has taken."""
    for i in range(PACKETS):
        await client.send_packet(i.to_bytes(2, "big") + PACKET)
        sent[0] += 1


async def receive_all_in_order(agent):
    with trio.fail_after(10):
        for i in range(PACKETS):
            assert (await agent.packets.receive())[:2] == i.to_bytes(2, "big")


async def open_gate(node, **conf):
    watchdog = Watchdog()
    skypy.dispatch("lua", watchdog.on_lua)
    gate = await node.newservice("gate")
    _, port = await node.call(gate, "lua", "open", {"address": "127.0.0.1", "port": 0, **conf})
    return gate, port, watchdog


async def test_the_gate_stops_reading_a_client_while_its_agent_is_behind(node):
    gate, port, watchdog = await open_gate(node, maxqueue=MAXQUEUE)
    agent = HeldConsumer()
    agent_addr = await node.newservice(agent.main)
    client = await FakeClient.connect(port)
    fd = await watchdog.opened()
    await node.call(gate, "lua", "forward", fd, 0, agent_addr)
    sent = [0]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood, client, sent)
        with trio.fail_after(10):
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        assert queue_length(agent_addr) <= MAXQUEUE + 2  # one slice of a read may pass it
        assert sent[0] < PACKETS  # TCP holds the client back
        agent.released.set()
        await receive_all_in_order(agent)
    await client.close()


async def test_a_client_that_sends_nothing_for_the_timeout_is_closed_and_logged(node):
    gate, port, watchdog = await open_gate(node, timeout=0.2)
    client = await FakeClient.connect(port)
    fd = await watchdog.opened()
    await node.call(gate, "lua", "accept", fd)
    await client.send_raw(netpack.pack(b"half")[:3])  # a header, then nothing
    assert await client.recv_eof(timeout=5) == []
    assert await watchdog.next() == ("close", fd)
    assert await node.wait_for_log(f"(fd {fd}) sent nothing for 0.2 s: closed")


async def test_a_client_that_keeps_talking_outlives_the_timeout(node):
    gate, port, watchdog = await open_gate(node, timeout=0.3)
    client = await FakeClient.connect(port)
    fd = await watchdog.opened()
    await node.call(gate, "lua", "accept", fd)
    for _ in range(4):  # 0.4 s, each packet within the timeout
        await client.send_packet(b"ping")
        assert await watchdog.next() == ("data", fd, b"ping")
        await trio.sleep(0.1)  # the client's pace, not a synchronisation
    await client.close()
    assert await watchdog.next() == ("close", fd)


async def test_a_client_held_back_for_its_agent_is_not_idle(node):
    # Swept every 0.1 s: time enough between sweeps to see every task blocked.
    gate, port, watchdog = await open_gate(node, maxqueue=MAXQUEUE, timeout=0.4)
    agent = HeldConsumer()
    agent_addr = await node.newservice(agent.main)
    client = await FakeClient.connect(port)
    fd = await watchdog.opened()
    await node.call(gate, "lua", "forward", fd, 0, agent_addr)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood, client, [0])
        with trio.fail_after(10):
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        await trio.sleep(1.0)  # time passing: over twice the timeout, with the client paused all along
        agent.released.set()
        await receive_all_in_order(agent)
    await client.close()
    assert await watchdog.next() == ("close", fd)


async def test_listening_on_every_interface_is_logged(node):
    gate = await node.newservice("gate")
    _, port = await node.call(gate, "lua", "open", {"port": 0})
    assert await node.wait_for_log(f"gate: 0.0.0.0:{port} is every interface")


async def test_a_connection_whose_agent_is_killed_is_closed_by_the_gate(node):
    gate, port, watchdog = await open_gate(node)
    agent = HeldConsumer()
    agent_addr = await node.newservice(agent.main)
    client = await FakeClient.connect(port)
    fd = await watchdog.opened()
    await node.call(gate, "lua", "forward", fd, 0, agent_addr)
    await skypy.kill(agent_addr)
    assert await client.recv_eof(timeout=5) == []
    assert await watchdog.next() == ("close", fd)
    assert await node.wait_for_log(f"(fd {fd}) is gone: connection closed")
