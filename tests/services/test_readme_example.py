from pathlib import Path

import pytest

from skypy.testing import FakeClient

# Every test here runs on a node with these open_node arguments: your
# config file (skypy_config("config/server.toml")) or your service folder.
pytestmark = pytest.mark.skypy_config(service_path=[Path(__file__).parents[2] / "services"])


async def test_what_alice_says_reaches_bob(skypy_node):
    watchdog = await skypy_node.newservice("watchdog")
    _, port = await skypy_node.call(watchdog, "lua", "start", {"address": "127.0.0.1", "port": 0})
    async with await FakeClient.connect(port) as alice, await FakeClient.connect(port) as bob:
        await alice.send_packet("login alice")
        assert await alice.recv_packet() == b"joined alice"
        await bob.send_packet("login bob")
        assert await bob.recv_packet() == b"joined bob"
        await alice.send_packet("say hi bob")
        assert await bob.recv_packet(timeout=5) == b"said alice hi bob"
    await skypy_node.wait_for_log("LAUNCH agent")
