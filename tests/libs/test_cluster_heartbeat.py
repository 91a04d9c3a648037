"""No call waits on a frozen peer forever ([cluster] heartbeat), an idle link or a
live peer's slow answer costs nothing, and a sender's end fails its calls quietly:
real sockets, a real node process, and the probe checked against skynet's
captured name query."""

import math
import signal

import pytest
import trio

import skypy
from skypy import cluster
from skypy._api.messages import running
from skypy.cluster import wire
from skypy.cluster._routes import ClusterRoutes
from skypy.netpack import PacketDecoder
from skypy.serialize import pack, unpack
from tests.helpers.cluster import Remote
from tests.helpers.vectors import cluster_capture

HEARTBEAT = 0.3


class FrozenPeer:
    """A cluster port whose node has stopped: it accepts, reads, and never answers."""

    def __init__(self, listener: trio.SocketListener) -> None:
        self.listener = listener
        self.port = listener.socket.getsockname()[1]
        self.connections = 0
        self._send, self.packets = trio.open_memory_channel(math.inf)

    @classmethod
    async def start(cls, nursery: trio.Nursery) -> "FrozenPeer":
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        peer = cls(listener)
        nursery.start_soon(trio.serve_listeners, peer.serve, [listener])
        return peer

    async def serve(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        decoder = PacketDecoder()
        while data := await stream.receive_some():
            for body in decoder.feed(data):
                self._send.send_nowait(body)

    async def next_request(self, timeout: float = 5) -> wire.Request:
        decoder = wire.RequestDecoder()
        with trio.fail_after(timeout):
            while (request := decoder.feed(await self.packets.receive())) is None:
                pass
        return request


@pytest.mark.skypy_config(cluster={"heartbeat": HEARTBEAT})
async def test_a_call_to_a_frozen_peer_fails_naming_the_node_and_the_next_call_redials(node):
    async with trio.open_nursery() as nursery:
        peer = await FrozenPeer.start(nursery)
        cluster.reload({"frozen": f"127.0.0.1:{peer.port}"})
        started = trio.current_time()
        with trio.fail_after(5), pytest.raises(skypy.CallError, match=r"cluster node \[frozen\].*heartbeat"):
            await cluster.call("frozen", "@store", "echo", 1)
        assert trio.current_time() - started >= HEARTBEAT
        with trio.fail_after(5), pytest.raises(skypy.CallError, match=r"cluster node \[frozen\]"):
            await cluster.call("frozen", "@store", "echo", 2)
        assert peer.connections == 2
        nursery.cancel_scope.cancel()


@pytest.mark.skypy_config(cluster={"heartbeat": HEARTBEAT})
async def test_the_probe_is_skynets_name_query(node):
    async with trio.open_nursery() as nursery:
        peer = await FrozenPeer.start(nursery)
        cluster.reload({"frozen": f"127.0.0.1:{peer.port}"})

        async def call():
            with pytest.raises(skypy.CallError):
                await cluster.call("frozen", "@store", "echo", 1)

        nursery.start_soon(call)
        assert (await peer.next_request()).target == "@store"
        probe = await peer.next_request()
        assert (probe.target, unpack(probe.msg)) == (0, ("skypy.heartbeat",))
        # Framed exactly as skynet frames cluster.query("db", "store").
        query = next(packet for _, label, packet in cluster_capture() if label == "name_query")
        assert wire.encode_request(0, 5, pack("store")) == [query]
        nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_a_stopped_node_process_fails_the_call_within_the_heartbeat(node, tmp_path):
    remote = await Remote.start(tmp_path)
    cluster.reload({"db": remote.address, "heartbeat": HEARTBEAT})
    try:
        assert await cluster.call("db", "@store", "echo", "up") == "up"
        remote.process.process.send_signal(signal.SIGSTOP)
        with trio.fail_after(5), pytest.raises(skypy.CallError, match=r"cluster node \[db\].*declared dead"):
            await cluster.call("db", "@store", "echo", "frozen")
        remote.process.process.send_signal(signal.SIGCONT)
        assert await cluster.call("db", "@store", "echo", "back") == "back"
    finally:
        remote.process.process.send_signal(signal.SIGCONT)
        await remote.stop()


@pytest.mark.slow
async def test_a_live_node_slower_than_the_heartbeat_is_not_declared_dead(node, tmp_path):
    remote = await Remote.start(tmp_path)
    # Longer than the others': the live node must answer each probe within
    # half of it, even on a machine shared with another test run.
    heartbeat = 2 * HEARTBEAT
    cluster.reload({"db": remote.address, "heartbeat": heartbeat})
    try:
        with pytest.raises(trio.TooSlowError):  # alive and answering probes: only our timeout ends it
            await cluster.call("db", "@store", "slow", timeout=2 * heartbeat)
        assert await cluster.call("db", "@store", "echo", "same link") == "same link"
        assert await cluster.call("db", "@store", "connections") == 1
    finally:
        await remote.stop()


@pytest.mark.skypy_config(cluster={"heartbeat": HEARTBEAT})
async def test_an_idle_link_sends_nothing(node):
    async with trio.open_nursery() as nursery:
        peer = await FrozenPeer.start(nursery)
        cluster.reload({"idle": f"127.0.0.1:{peer.port}"})
        cluster.send("idle", "@store", "push", 1)
        assert (await peer.next_request()).push
        with pytest.raises(trio.TooSlowError):
            await peer.next_request(timeout=1.5 * HEARTBEAT)  # a busy link would have been probed by now
        nursery.cancel_scope.cancel()


async def test_killing_a_sender_with_calls_waiting_fails_them_quietly(node):
    async with trio.open_nursery() as nursery:
        peer = await FrozenPeer.start(nursery)
        cluster.reload({"frozen": f"127.0.0.1:{peer.port}"})
        failures = []

        async def call(i):
            try:
                await cluster.call("frozen", "@store", "echo", i)
            except skypy.CallError as exc:
                failures.append(exc)

        async with trio.open_nursery() as callers:
            for i in range(10):
                callers.start_soon(call, i)
            for _ in range(10):
                await peer.next_request()
            await skypy.kill(ClusterRoutes.of(running().node).routes["frozen"].sender)
        assert len(failures) == 10
        assert node.crashes == []  # no ResponseError from the channel failing its waiters
        nursery.cancel_scope.cancel()
