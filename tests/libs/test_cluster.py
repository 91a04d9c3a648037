"""skypy.cluster between this test's node and a `skypy run` node in another process, on loopback."""

from __future__ import annotations

import signal

import pytest
import trio

import skypy
from skypy import cluster
from skypy.cluster import wire as cluster_wire
from skypy.testing import wait_until
from tests.helpers.cluster import STORE, Remote

# Each test talks to a `skypy run` node in a process of its own.
pytestmark = pytest.mark.slow


async def test_first_use_dials_one_connection_shared_by_every_service(node, db):
    assert await cluster.call("db", "@store", "connections") == 1  # the call's own

    async def caller():
        for n in range(5):
            assert await cluster.call("db", "@store", "echo", n) == n

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(node.newservice, caller)
    assert await cluster.call("db", "@store", "connections") == 1


async def test_call_returns_the_remote_values_as_a_local_call_would(node, db):
    assert await cluster.call("db", "@store", "echo") is None
    assert await cluster.call("db", "@store", "echo", "one") == "one"
    assert await cluster.call("db", "@store", "echo", 1, "a", True, {"k": [1.5]}) == (1, "a", True, {"k": [1.5]})
    assert await cluster.call("db", STORE, "echo", b"\xff\x00") == b"\xff\x00"
    assert await cluster.call("db", ".store", "echo", "by local name") == "by local name"


async def test_messages_from_one_service_arrive_in_the_order_sent_multipart_or_not(node, db):
    big = cluster_wire.PART_SIZE + 100
    sent = []
    for n in range(60):
        value = n if n % 3 else "y" * (big + n)  # every third one goes in parts
        target = "@store" if n % 2 else STORE
        if n % 10 == 9:
            assert await cluster.call("db", target, "echo", value) == value
        else:
            cluster.send("db", target, "push", value)
            sent.append(value if n % 3 else f"str:{big + n}:y")
    assert list(await cluster.call("db", "@store", "pushed")) == sent


async def test_a_remote_error_arrives_as_call_error(node, db):
    with pytest.raises(skypy.CallError, match="store: fail requested"):
        await cluster.call("db", "@store", "fail")
    assert await cluster.call("db", "@store", "echo", "still there") == "still there"


async def test_an_unknown_remote_name_or_address_fails_the_call(node, db):
    with pytest.raises(skypy.CallError, match="Invalid name"):
        await cluster.call("db", "@nosuch", "echo")
    with pytest.raises(skypy.CallError, match="invalid address :00abcdef"):
        await cluster.call("db", 0xABCDEF, "echo")
    with pytest.raises(skypy.CallError, match="name not found"):
        await cluster.query("db", "nosuch")


async def test_a_failed_remote_call_names_the_node_and_service_not_a_local_helper(node, db):
    with pytest.raises(skypy.CallError) as failed:
        await cluster.call("db", "@nosuch", "echo")
    assert str(failed.value).startswith("cluster node [db] @nosuch: Invalid name")


async def test_a_failed_call_through_a_proxy_names_the_node_and_service_not_the_sender(node, db):
    nosuch = await cluster.proxy("db", "@nosuch")
    with pytest.raises(skypy.CallError) as failed:
        await skypy.call(nosuch, "lua", "echo")
    assert str(failed.value) == "cluster node [db] @nosuch: Invalid name"
    store = await cluster.proxy("db", "@store")
    with pytest.raises(skypy.CallError) as failed:
        await skypy.call(store, "lua", "fail")
    assert str(failed.value).startswith("cluster node [db] @store: ")
    assert str(failed.value).endswith("RuntimeError: store: fail requested")


async def test_a_remote_address_may_be_given_as_text(node, db):
    assert await cluster.call("db", skypy.address(STORE), "echo", "by text") == "by text"


async def test_query_returns_the_handle_of_a_registered_name(node, db):
    assert await cluster.query("db", "store") == STORE


async def test_a_proxy_is_a_local_handle_for_the_remote_service(node, db):
    store = await cluster.proxy("db", "@store")
    assert await cluster.proxy("db", "@store") == store
    assert await skypy.call(store, "lua", "echo", 1, "two") == (1, "two")
    skypy.send(store, "lua", "push", "via proxy")
    assert await skypy.call(store, "lua", "pushed") == "str:9:v"
    with pytest.raises(skypy.CallError, match="store: fail requested"):
        await skypy.call(store, "lua", "fail")


async def test_megabyte_payloads_go_both_ways(node, db):
    payload = bytes(range(256)) * (6 << 10)  # 1.5 MiB, not UTF-8: comes back as bytes
    assert await cluster.call("db", "@store", "echo", payload, "x" * (1 << 20)) == (payload, "x" * (1 << 20))


async def test_a_thousand_concurrent_calls_share_one_link(node, db):
    answers = {}

    async def caller():
        def run(session, source):
            all_answered = skypy.response()

            async def one(n):
                answers[n] = await cluster.call("db", "@store", "echo", n, "z" * (n % 50))
                if len(answers) == 1000:
                    all_answered()

            for n in range(1000):
                skypy.fork(one, n)

        skypy.dispatch("lua", run)

    await skypy.call(await node.newservice(caller), "lua", timeout=20)
    assert answers == {n: (n, "z" * (n % 50)) for n in range(1000)}
    assert await cluster.call("db", "@store", "connections") == 1


async def test_call_timeout_raises_too_slow(node, db):
    with pytest.raises(trio.TooSlowError):
        await cluster.call("db", "@store", "slow", timeout=0.2)
    assert await cluster.call("db", "@store", "echo", "after") == "after"


async def test_killing_the_remote_mid_call_fails_the_call_within_a_second_and_the_next_call_redials(
    node, db, tmp_path
):
    killed_at = []

    async def kill_when_slow_started():
        await db.process.wait_for("slow started")
        db.process.process.send_signal(signal.SIGKILL)
        killed_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(kill_when_slow_started)
        with pytest.raises(skypy.CallError, match="dropped"):
            await cluster.call("db", "@store", "slow")
    assert trio.current_time() - killed_at[0] < 1.0
    await db.process.process.wait()
    db.process = (await Remote.start(tmp_path, db.port)).process
    assert await cluster.call("db", "@store", "echo", "again") == "again"


async def test_garbage_on_the_cluster_port_closes_that_connection_and_the_node_carries_on(node, db):
    stream = await trio.open_tcp_stream("127.0.0.1", db.port)
    await stream.send_all(b"\x00\x03\x7fjunk")  # a packet of an unknown type
    with trio.fail_after(5):
        assert await stream.receive_some() == b""  # closed by the node
    assert "unknown request packet type 0x7f" in await db.process.wait_for("bad packet")
    assert await cluster.call("db", "@store", "echo", "alive") == "alive"


async def test_a_node_marked_down_fails_at_once(node, db):
    assert await cluster.call("db", "@store", "echo", 1) == 1
    cluster.reload({"db": False})
    with trio.fail_after(0.5), pytest.raises(skypy.CallError, match=r"cluster node \[db\] is down\."):
        await cluster.call("db", "@store", "echo", 2)
    cluster.reload({"db": db.address})
    assert await cluster.call("db", "@store", "echo", 3) == 3


async def test_a_monitor_on_a_proxy_is_told_node_down_when_the_link_dies(node, db):
    store = await cluster.proxy("db", "@store")
    assert await skypy.call(store, "lua", "echo", "up") == "up"
    told = []
    skypy.monitor(store, lambda handle, reason: told.append((handle, reason)))
    await db.stop()
    await wait_until(lambda: told)
    assert told == [(store, "node down")]
    assert store not in node.node.services
