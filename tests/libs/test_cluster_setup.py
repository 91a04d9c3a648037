"""The cluster's table, names and addresses; the sender's first bytes; nodes run by `skypy run`."""

from __future__ import annotations

import signal
import socket as stdsocket
from pathlib import Path

import pytest
import trio

import skypy
from skypy import cluster, socket
from skypy.cluster import wire as cluster_wire
from skypy.netpack import PacketDecoder
from skypy.testing import NodeProcess, open_test_node


async def test_an_unknown_node_fails_at_once(node):
    with trio.fail_after(0.5), pytest.raises(skypy.CallError, match=r"cluster node \[nowhere\] is unknown"):
        await cluster.call("nowhere", "@store", "echo")
    with pytest.raises(skypy.CallError, match="nowhere"):
        await cluster.proxy("nowhere", "@store")


async def test_a_node_marked_down_in_the_table_fails_at_once(node):
    cluster.reload({"db": False})
    with trio.fail_after(0.5), pytest.raises(skypy.CallError, match=r"^cluster node \[db\] is down\.$"):
        await cluster.call("db", "@store", "echo")


async def test_send_to_an_unknown_or_down_node_is_logged_and_dropped(node, logs):
    cluster.reload({"db": False})
    cluster.send("db", "@store", "push", 1)
    cluster.send("nowhere", "@store", "push", 1)
    dropped = [text for _, text in logs if text.startswith("cluster.send dropped")]
    assert len(dropped) == 2 and "is down" in dropped[0] and "nowhere" in dropped[1]


async def test_a_call_to_a_refusing_node_fails(node):
    id, _, port = await socket.listen("127.0.0.1", 0)
    await socket.close(id)
    cluster.reload({"db": f"127.0.0.1:{port}"})
    with trio.fail_after(5), pytest.raises(skypy.CallError, match=f"127.0.0.1:{port}"):
        await cluster.call("db", "@store", "echo")


@pytest.mark.parametrize("addr", ["store", "", 0, -1, 1.5])
async def test_a_remote_address_is_a_handle_a_dot_name_or_an_at_name(node, addr):
    cluster.reload({"db": "127.0.0.1:1"})
    with pytest.raises(ValueError, match="is not a handle"):
        await cluster.call("db", addr, "echo")


@pytest.mark.parametrize("table", [{"db": "127.0.0.1"}, {"db": "nohost:x"}, {"db": True}])
async def test_reload_refuses_an_address_that_is_not_host_port(node, table):
    with pytest.raises(ValueError, match=r"cluster node \[db\]"):
        cluster.reload(table)


async def test_register_takes_a_plain_name(node):
    with pytest.raises(ValueError, match="without '@'"):
        cluster.register("@store")


async def test_the_sender_dials_on_first_use_and_sends_the_request_first_no_handshake(node):
    """A fake peer sees exactly skynet's packet for the first call, session 1, and answers it."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    cluster.reload({"fake": f"127.0.0.1:{port}"})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cluster.call, "fake", "@store", "echo", 1)
        with trio.fail_after(5):
            peer = await listener.accept()
            first = await peer.receive_some()
        assert first == cluster_wire.encode_request("@store", 1, skypy.pack("echo", 1))[0]
        await peer.send_all(cluster_wire.encode_response(1, True, skypy.pack(1))[0])
    await peer.aclose()
    await listener.aclose()


async def test_a_request_made_before_the_sender_exists_is_held_in_order(node):
    """Sends and a call made at once, before the first one has started the sender, keep their order."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    cluster.reload({"fake": f"127.0.0.1:{port}"})
    cluster.send("fake", "@a", "one")
    cluster.send("fake", ".b", "two")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cluster.call, "fake", 7, "three")
        with trio.fail_after(5):
            peer = await listener.accept()
            packets, requests, got = PacketDecoder(), cluster_wire.RequestDecoder(), []
            while len(got) < 3:
                got += [requests.feed(body) for body in packets.feed(await peer.receive_some())]
        assert [(r.target, r.session, skypy.unpack(r.msg)) for r in got] == [
            ("@a", 0, ("one",)), (".b", 0, ("two",)), (7, 1, ("three",))
        ]
        await peer.send_all(cluster_wire.encode_response(1, True, b"")[0])
    await peer.aclose()
    await listener.aclose()


async def test_a_config_naming_this_node_opens_its_cluster_port_before_start(tmp_path):
    (tmp_path / "probe.py").write_text(
        "import skypy\n"
        "from skypy import socket\n"
        "async def main():\n"
        "    skypy.setenv('listening', [s['kind'] for s in socket.info()] == ['listen'])\n"
    )
    config = tmp_path / "node.toml"
    config.write_text('start = "probe"\nservice_path = ["."]\nnode = "db"\n[cluster]\ndb = "127.0.0.1:0"\n')
    async with open_test_node(config):
        assert skypy.getenv("listening") is True
        assert skypy.getenv("node") == "db"


@pytest.mark.slow
async def test_skypy_run_starts_each_listed_node_as_its_own_process_and_stops_them_together(tmp_path):
    (tmp_path / "two.toml").write_text(
        'nodes = ["a", "b"]\n[cluster]\na = "127.0.0.1:0"\nb = "127.0.0.1:0"\n'
    )
    nodes = await NodeProcess.start("run", "two.toml", cwd=tmp_path)
    try:
        for name in "ab":
            assert (await nodes.wait_for(f"{name} [")).startswith(f"{name} [")
            await nodes.wait_for(f"{name} [:00000003] cluster: listening on 127.0.0.1:")
    finally:
        assert await nodes.stop(signal.SIGTERM) == 0


@pytest.mark.slow
async def test_a_node_that_ends_by_itself_stops_the_others_with_its_status(tmp_path):
    (tmp_path / "broken.py").write_text("async def main():\n    raise RuntimeError('cannot start')\n")
    (tmp_path / "two.toml").write_text(
        'start = "broken"\nservice_path = ["."]\n'
        '[cluster]\na = "127.0.0.1:0"\nb = "127.0.0.1:0"\n'
    )
    nodes = await NodeProcess.start("run", "two.toml", "--node", "a", "--node", "b", cwd=tmp_path)
    await nodes.wait_for("stopping the others")
    with trio.fail_after(20):
        assert await nodes.process.wait() != 0


@pytest.mark.slow
async def test_the_example_config_runs_two_nodes_that_share_the_jobs(tmp_path):
    config = (Path(__file__).parents[2] / "config" / "cluster.toml").read_text()
    for port in ("2528", "2529"):  # the example's ports may be taken here: use free ones
        with stdsocket.socket() as free:
            free.bind(("127.0.0.1", 0))
            config = config.replace(port, str(free.getsockname()[1]))
    (tmp_path / "cluster.toml").write_text(config)
    nodes = await NodeProcess.start("run", "cluster.toml", cwd=tmp_path)
    try:
        assert "jobs on 8 workers over 2 nodes" in await nodes.wait_for("front: ")
    finally:
        assert await nodes.stop() == 0


async def test_reload_with_no_table_reads_the_config_file_again(tmp_path):
    config = tmp_path / "node.toml"
    config.write_text('[cluster]\ndb = "127.0.0.1:1"\n')
    async with open_test_node(config):
        config.write_text("[cluster]\ndb = false\n")
        cluster.reload()
        with pytest.raises(skypy.CallError, match=r"cluster node \[db\] is down\."):
            await cluster.call("db", "@store", "echo")


async def test_a_killed_sender_is_replaced_on_next_use(node, logs):
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    cluster.reload({"fake": f"127.0.0.1:{listener.socket.getsockname()[1]}"})
    cluster.send("fake", "@store", "one")
    with trio.fail_after(5):
        peer = await listener.accept()
        assert await peer.receive_some()
    sender = next(source for source, text in logs if text.startswith("LAUNCH clustersender fake"))
    await skypy.kill(sender)
    cluster.send("fake", "@store", "two")
    with trio.fail_after(5):
        second = await listener.accept()  # a new sender, a new connection
        request = await second.receive_some()
    assert skypy.unpack(cluster_wire.RequestDecoder().feed(request[2:]).msg) == ("two",)
    for stream in (peer, second, listener):
        await stream.aclose()
