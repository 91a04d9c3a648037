"""The gate service: listening, framing, forwarding, and what it tells its watchdog."""

import math
import socket as stdsocket
import struct

import pytest
import trio

import skypy
from skypy import netpack, socket
from skypy.testing import FakeClient

MAXCLIENT = 3
MiB = 1 << 20


class Watchdog:
    """The test body acting as the gate's watchdog: the events it is told, in order."""

    def __init__(self) -> None:
        self._send, self._events = trio.open_memory_channel(math.inf)

    def on_lua(self, session, source, cmd, event, fd, *args):
        assert cmd == "socket"
        self._send.send_nowait((event, fd, *args))

    async def next(self, timeout=10):
        with trio.fail_after(timeout):
            return await self._events.receive()

    async def opened(self):
        event, fd, addr = await self.next()
        assert event == "open"
        return fd


class Agent:
    """A service that records the client packets the gate forwards to it."""

    def __init__(self) -> None:
        self._send, self.packets = trio.open_memory_channel(math.inf)

    async def main(self):
        skypy.dispatch("client", lambda session, source, fd, packet: self._send.send_nowait((session, source, fd, packet)))

    async def next(self, timeout=10):
        with trio.fail_after(timeout):
            return await self.packets.receive()


@pytest.fixture
async def gate(node):
    watchdog = Watchdog()
    skypy.dispatch("lua", watchdog.on_lua)  # the test body is the watchdog: it calls open
    addr = await node.newservice("gate")
    host, port = await node.call(addr, "lua", "open", {"address": "127.0.0.1", "port": 0, "maxclient": MAXCLIENT})
    return addr, port, watchdog


async def forwarded(node, gate, client=0):
    """A client whose connection is forwarded to a new Agent; (fake client, fd, agent, agent address)."""
    addr, port, watchdog = gate
    agent = Agent()
    agent_addr = await node.newservice(agent.main)
    conn = await FakeClient.connect(port)
    fd = await watchdog.opened()
    await node.call(addr, "lua", "forward", fd, client, agent_addr)
    return conn, fd, agent, agent_addr


def queued(fd):
    """Bytes written to `fd` that the kernel has not taken yet."""
    return next(entry["queued"] for entry in socket.info() if entry["id"] == fd)


def tcp_states(port):
    """The kernel's state codes of the IPv4 TCP sockets with local port `port` (/proc/net/tcp)."""
    states = []
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            if int(local.split(":")[1], 16) == port:
                states.append(state)
    return states


async def test_open_listens_on_the_port_it_returns_and_logs_it(node, gate):
    addr, port, watchdog = gate
    assert port != 0
    assert await node.wait_for_log(f"Listen on 127.0.0.1:{port}")


async def test_nodelay_false_is_logged_as_ignored_since_every_connection_has_it(node):
    gate = await node.newservice("gate")
    await node.call(gate, "lua", "open", {"address": "127.0.0.1", "nodelay": False})
    assert await node.wait_for_log("nodelay = false ignored")


async def test_a_connection_is_announced_to_the_watchdog_with_its_address(gate):
    addr, port, watchdog = gate
    async with await FakeClient.connect(port) as conn:
        event, fd, peer = await watchdog.next()
        local = conn.stream.socket.getsockname()
        assert (event, peer) == ("open", f"{local[0]}:{local[1]}")


async def test_forwarded_packets_reach_the_agent_in_order_whatever_the_reads(node, gate):
    conn, fd, agent, _ = await forwarded(node, gate, client=77)
    stream = b"".join(netpack.pack(b"packet %d" % i) for i in range(50))
    for cut in range(0, len(stream), 7):  # headers and bodies split across writes
        await conn.send_raw(stream[cut:cut + 7])
    for i in range(50):
        assert await agent.next() == (0, 77, fd, b"packet %d" % i)


async def test_an_accepted_connection_sends_its_packets_to_the_watchdog(node, gate):
    addr, port, watchdog = gate
    conn = await FakeClient.connect(port)
    fd = await watchdog.opened()
    await node.call(addr, "lua", "accept", fd)
    await conn.send_packet(b"hello")
    assert await watchdog.next() == ("data", fd, b"hello")


async def test_the_watchdog_hears_close_once_when_the_client_goes(node, gate):
    addr, port, watchdog = gate
    conn, fd, _, _ = await forwarded(node, gate)
    await conn.close()
    assert await watchdog.next() == ("close", fd)
    conn2 = await FakeClient.connect(port)
    assert (await watchdog.next())[0] == "open"  # no second close came in between
    await conn2.close()


async def test_kick_flushes_what_the_agent_wrote_then_closes(node, gate):
    addr, port, watchdog = gate
    conn, fd, _, _ = await forwarded(node, gate)
    socket.write(fd, netpack.pack(b"goodbye"))
    await node.call(addr, "lua", "kick", fd)
    assert await conn.recv_eof() == [b"goodbye"]
    assert await watchdog.next() == ("close", fd)


async def test_kick_closes_a_connection_that_was_never_started(node, gate):
    addr, port, watchdog = gate
    conn = await FakeClient.connect(port)
    fd = await watchdog.opened()
    await node.call(addr, "lua", "kick", fd)
    assert await watchdog.next() == ("close", fd)
    assert await conn.recv_eof() == []


async def test_connections_over_maxclient_are_closed_at_once_and_logged(node, gate):
    addr, port, watchdog = gate
    clients = [await FakeClient.connect(port) for _ in range(MAXCLIENT)]
    for _ in range(MAXCLIENT):
        await watchdog.opened()
    extra = await FakeClient.connect(port)
    assert await extra.recv_eof() == []
    assert await node.wait_for_log(f"maxclient {MAXCLIENT} reached")
    for client in clients:
        await client.close()


async def test_a_closed_connection_frees_its_maxclient_slot(node, gate):
    addr, port, watchdog = gate
    conns = [await forwarded(node, gate) for _ in range(MAXCLIENT)]
    first, fd, _, _ = conns[0]
    await first.close()
    assert await watchdog.next() == ("close", fd)
    again = await FakeClient.connect(port)
    assert (await watchdog.next())[0] == "open"
    await again.close()


async def test_half_a_packet_then_disconnect_loses_only_the_half(node, gate):
    addr, port, watchdog = gate
    conn, fd, agent, _ = await forwarded(node, gate)
    await conn.send_raw(netpack.pack(b"whole") + netpack.pack(b"half a packet")[:6])
    await conn.close()
    assert await agent.next() == (0, 0, fd, b"whole")
    assert await watchdog.next() == ("close", fd)
    conn2, fd2, agent2, _ = await forwarded(node, gate)  # the gate carries on
    await conn2.send_packet(b"next")
    assert (await agent2.next())[3] == b"next"
    await conn2.close()


async def test_the_gate_closes_its_end_when_the_client_closes_leaving_no_close_wait(node, gate):
    addr, port, watchdog = gate
    conn, fd, _, _ = await forwarded(node, gate)
    await conn.half_close()  # FIN: the server side would sit in CLOSE-WAIT until the gate closes
    assert await watchdog.next() == ("close", fd)
    assert "08" not in tcp_states(port)  # 08: TCP_CLOSE_WAIT
    assert await conn.recv_eof() == []


async def test_a_reset_connection_is_told_as_error_then_close(node, gate):
    conn, fd, _, _ = await forwarded(node, gate)
    _, _, watchdog = gate
    conn.stream.socket.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, struct.pack("ii", 1, 0))
    await conn.close()  # linger 0: RST instead of FIN
    event, error_fd, message = await watchdog.next()
    assert (event, error_fd) == ("error", fd) and "reset" in message.lower()
    assert await watchdog.next() == ("close", fd)


async def test_a_backed_up_connection_is_told_as_warning(node, gate):
    addr, port, watchdog = gate
    conn = await FakeClient.connect(port, rcvbuf=4096)
    fd = await watchdog.opened()
    await node.call(addr, "lua", "accept", fd)
    block = netpack.pack(bytes(60000))
    while queued(fd) < MiB:  # the client never reads
        socket.write(fd, block)
    event, warned_fd, size = await watchdog.next()
    assert (event, warned_fd) == ("warning", fd) and size >= MiB
    await conn.close()


async def test_close_stops_listening_and_keeps_the_connections(node, gate):
    addr, port, watchdog = gate
    conn, fd, agent, _ = await forwarded(node, gate)
    await node.call(addr, "lua", "close")
    with pytest.raises(OSError):
        await FakeClient.connect(port)
    await conn.send_packet(b"still here")
    assert (await agent.next())[3] == b"still here"
    await conn.close()


async def test_forward_of_an_unknown_connection_fails_the_call(node, gate):
    addr, port, watchdog = gate
    with pytest.raises(skypy.CallError, match="no connection 999"):
        await node.call(addr, "lua", "forward", 999)
    assert "no connection 999" in str(node.crashes.pop().exception)
