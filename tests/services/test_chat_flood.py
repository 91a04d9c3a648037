"""The chat server under a flood, in a node process of its own: its memory (VmRSS from
/proc) stays bounded and another client's round trips stay quick."""

import time

import pytest
import trio

from skypy.testing import FakeClient, NodeProcess

FLOOD = 10 << 20  # zero bytes: 5 Mi empty packets, as the flood that grew the old gate by 264-796 MiB
MiB = 1 << 20

CHAT_NODE = """
import skypy

async def main():
    watchdog = await skypy.newservice("watchdog")
    _, port = await skypy.call(watchdog, "lua", "start", {"address": "127.0.0.1", "port": 0})
    skypy.error(f"chat on port {port}")
"""


def memory(pid: int, field: str) -> int:
    """A /proc/PID/status memory figure (VmRSS, VmHWM: the peak), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.slow
async def test_a_flood_of_empty_packets_leaves_memory_bounded_and_others_served(tmp_path):
    (tmp_path / "chatnode.py").write_text(CHAT_NODE)
    (tmp_path / "chat.toml").write_text(f'start = "chatnode"\nservice_path = ["{tmp_path}"]\n')
    node = await NodeProcess.start("run", "chat.toml", cwd=tmp_path)
    try:
        port = int((await node.wait_for("chat on port")).rsplit(" ", 1)[1])
        alice = await FakeClient.connect(port)
        await alice.send_packet("login alice")
        assert await alice.recv_packet() == b"joined alice"
        before = memory(node.process.pid, "VmRSS")
        flooder = await FakeClient.connect(port, rcvbuf=4096)  # and it never reads
        flooded = trio.Event()
        trips = []

        async def flood():
            try:
                await flooder.send_raw(bytes(FLOOD))
            except trio.BrokenResourceError:
                pass  # kicked for not reading its answers
            flooded.set()

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood)
                while not flooded.is_set() or len(trips) < 5:
                    sent = time.monotonic()
                    await alice.send_packet("who")
                    assert await alice.recv_packet() == b"users alice"
                    trips.append(time.monotonic() - sent)
        assert memory(node.process.pid, "VmHWM") - before < 50 * MiB
        # Under 100 ms as a rule; a machine shared with another test run may
        # stall any one trip, never for the seconds the unbounded queue cost.
        assert sorted(trips)[len(trips) // 2] < 0.1 and max(trips) < 1.0
        await flooder.close()
        await alice.close()
    finally:
        assert await node.stop() == 0
