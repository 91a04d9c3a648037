"""skypy.multicast: every subscriber gets every message once, in publish order, on this node and others."""

import tracemalloc

import pytest
import trio

import skypy
from skypy import multicast
from skypy.testing import wait_until
from tests.helpers.nodes import NODE_A, node_b


def subscriber(ch, got, stay=None, leave_after=None):
    """A service that subscribes to `ch`, appends what it gets to `got`, and leaves after `leave_after` messages."""

    async def main():
        def on_message(*args):
            got.append(args)
            if leave_after is not None and len(got) == leave_after:
                multicast.unsubscribe(ch)

        await multicast.subscribe(ch, on_message)

    return main


async def test_every_subscriber_gets_every_message_once_in_publish_order(node):
    ch = await multicast.new()
    gots = [[] for _ in range(5)]
    for got in gots:
        await skypy.newservice(subscriber(ch, got))

    async def publisher(name):
        for n in range(50):
            multicast.publish(ch, name, n)
            await skypy.sleep(0)

    async with trio.open_nursery() as nursery:
        for name in "xyz":
            nursery.start_soon(node.newservice, lambda name=name: publisher(name))
    await wait_until(lambda: all(len(got) == 150 for got in gots))
    assert all(got == gots[0] for got in gots)  # one order for all
    for name in "xyz":
        assert [n for who, n in gots[0] if who == name] == list(range(50))


def contiguous_in(run, reference):
    """Whether `run` appears in `reference` as one unbroken slice (nothing skipped, nothing twice)."""
    if not run:
        return True
    start = reference.index(run[0])
    return reference[start : start + len(run)] == run


async def test_subscribers_joining_and_leaving_meanwhile_each_see_one_unbroken_run(node):
    ch = await multicast.new()
    reference = []
    await skypy.newservice(subscriber(ch, reference))
    runs = []

    async def publisher():
        for n in range(200):
            multicast.publish(ch, n)
            if n % 20 == 5:  # a newcomer joins halfway through, leaving after a while
                runs.append([])
                await skypy.newservice(subscriber(ch, runs[-1], leave_after=30))
            await skypy.sleep(0)

    await skypy.newservice(publisher)
    await wait_until(lambda: len(reference) == 200)
    assert reference == [(n,) for n in range(200)]
    assert all(contiguous_in(run, reference) for run in runs)
    assert [len(run) for run in runs[:5]] == [30] * 5


@pytest.mark.slow
async def test_ten_thousand_subscribers_receive_the_one_payload_object(node):
    ch = await multicast.new()
    payload = bytes(32 << 20)  # beside it, the 10,000 messages themselves take about 8 MB
    got = []
    subscribers = 10_000
    for _ in range(subscribers):
        await skypy.newservice(subscriber(ch, got))
    tracemalloc.start()
    try:
        multicast.publish(ch, payload)
        await wait_until(lambda: len(got) == subscribers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(args[0] is payload for args in got)
    assert peak < len(payload)  # a copy each would be 10,000 times the payload


async def test_an_async_subscriber_function_runs_as_a_coroutine_of_its_service(node):
    ch = await multicast.new()
    got = []

    async def service():
        async def on_message(n):
            await skypy.sleep(0)
            got.append((skypy.self(), n))

        await multicast.subscribe(ch, on_message)

    addr = await skypy.newservice(service)
    multicast.publish(ch, 1)
    multicast.publish(ch, 2)
    await wait_until(lambda: len(got) == 2)
    assert got == [(addr, 1), (addr, 2)]


async def test_unsubscribe_and_exit_stop_the_messages(node):
    ch = await multicast.new()
    stays, leaves = [], []
    await skypy.newservice(subscriber(ch, stays))
    leaver = await skypy.newservice(subscriber(ch, leaves))
    multicast.publish(ch, 1)
    await wait_until(lambda: len(leaves) == 1)
    await skypy.kill(leaver)
    multicast.publish(ch, 2)
    await wait_until(lambda: len(stays) == 2)
    assert leaves == [(1,)]
    assert not [line for _, line in node.log_lines if "dead address" in line]


async def test_publishing_on_a_deleted_channel_is_an_error(node):
    ch = await multicast.new()
    multicast.delete(ch)
    with pytest.raises(KeyError, match="no multicast channel"):
        multicast.publish(ch, 1)
    with pytest.raises(KeyError, match="no multicast channel"):
        await multicast.subscribe(ch, print)


@pytest.mark.skypy_config(**NODE_A)
async def test_across_nodes_order_is_the_owners_and_each_message_crosses_once(node, tmp_path):
    ch = await multicast.new()
    here = []
    await skypy.newservice(subscriber(ch, here))
    there = [[] for _ in range(3)]
    late = []

    with trio.fail_after(10):
        async with node_b(node, [tmp_path]) as b:
            for got in there:
                await b.newservice(subscriber(ch, got))
            multicastd_b = await b.queryservice("multicastd")
            handled = (await b.call(multicastd_b, "debug", "STAT"))["message"]

            async def remote_publisher():
                for n in range(30):
                    multicast.publish(ch, "b", n)
                    if n == 10:
                        await skypy.newservice(subscriber(ch, late, leave_after=10))
                    await skypy.sleep(0)

            async def local_publisher():
                for n in range(30):
                    multicast.publish(ch, "a", n)
                    await skypy.sleep(0)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(b.newservice, remote_publisher)
                nursery.start_soon(skypy.newservice, local_publisher)
            await wait_until(lambda: len(here) == 60 and all(len(got) == 60 for got in there))
            crossed = (await b.call(multicastd_b, "debug", "STAT"))["message"] - handled - 1  # less this STAT
    assert all(got == here for got in there)  # the owner's order, on both nodes
    for name in "ab":
        assert [n for who, n in here if who == name] == list(range(30))
    assert len(late) == 10 and contiguous_in(late, here)
    # One message per publish reached node b, whatever the number of subscribers
    # there; b's own publishes went to the owner (through the cluster agent, not here).
    assert crossed == 60


@pytest.mark.skypy_config(**NODE_A)
async def test_a_node_whose_subscribers_come_and_go_gets_unbroken_runs(node, tmp_path):
    ch = await multicast.new()
    reference = []
    await skypy.newservice(subscriber(ch, reference))
    runs = [[], [], []]
    publishing = trio.Event()
    stop = trio.Event()

    async def publisher():
        n = 0
        while not stop.is_set():
            multicast.publish(ch, n)
            n += 1
            publishing.set()
            await skypy.sleep(0.001)

    with trio.fail_after(10):
        async with node_b(node, [tmp_path]) as b:
            await skypy.newservice(lambda: skypy.fork(publisher))
            await publishing.wait()
            for run in runs:  # each the only subscriber on b: it joins, and b leaves after it
                await b.newservice(subscriber(ch, run, leave_after=10))
                await wait_until(lambda run=run: len(run) == 10, timeout=5)
            # b, with nobody listening, told the owner on the next message: no more cross.
            links = node.node.extensions["multicast"].owned[ch]
            await wait_until(lambda: not links, timeout=5)
            stop.set()
    assert reference == [(n,) for n in range(len(reference))]
    for run in runs:
        assert len(run) == 10 and contiguous_in(run, reference)


@pytest.mark.skypy_config(**NODE_A)
async def test_a_subscribe_not_awaited_holds_once_the_subscriber_suspends_as_in_skynet(node, tmp_path):
    ch = await multicast.new()
    got = []

    async def listener():
        multicast.subscribe(ch, lambda *args: got.append(args))  # skynet's style: no await

    with trio.fail_after(10):
        async with node_b(node, [tmp_path]) as b:
            await b.newservice(listener)
            links = node.node.extensions["multicast"].owned[ch]
            await wait_until(lambda: links == {"b"}, timeout=5)
            multicast.publish(ch, "hello")
            await wait_until(lambda: got == [("hello",)], timeout=5)
