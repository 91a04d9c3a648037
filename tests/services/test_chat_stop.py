"""Stopping is quiet: the chat server stopped under load, and clients of a lobby or
agent that is gone, on real sockets and a real node process."""

import signal
import time

import pytest
import trio

import skypy
from skypy.testing import FakeClient, NodeProcess
from tests.services.test_chat_flood import CHAT_NODE

CLIENTS = 30


async def test_a_client_of_a_killed_lobby_is_closed_not_left_waiting(lobby):
    await skypy.kill(await lobby.node.call(lobby.watchdog, "lua", "lobby"))
    client = await lobby.connect()
    await client.send_packet("login alice")
    assert await client.recv_eof(timeout=5) == []
    assert await lobby.node.wait_for_log("agent: ")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_stopping_under_chat_load_exits_0_within_5_s_with_no_traceback(tmp_path, signum):
    (tmp_path / "chatnode.py").write_text(CHAT_NODE)
    (tmp_path / "chat.toml").write_text(f'start = "chatnode"\nservice_path = ["{tmp_path}"]\n')
    node = await NodeProcess.start("run", "chat.toml", cwd=tmp_path)
    port = int((await node.wait_for("chat on port")).rsplit(" ", 1)[1])
    talking = trio.Event()

    async def chat(i):
        try:
            async with await FakeClient.connect(port) as client:
                await client.send_packet(f"login user{i}")
                while True:
                    await client.send_packet(f"say {'x' * 100}")
                    await client.recv_packet()
                    talking.set()
        except (EOFError, OSError, trio.BrokenResourceError):
            pass  # the server stopped

    async with trio.open_nursery() as nursery:
        for i in range(CLIENTS):
            nursery.start_soon(chat, i)
        with trio.fail_after(10):
            await talking.wait()
        stopped = time.monotonic()
        assert await node.stop(signum, timeout=5) == 0
        assert time.monotonic() - stopped < 5
        nursery.cancel_scope.cancel()
    output = await node.output()
    assert not [line for line in output if "Traceback" in line or " raised:" in line], output
