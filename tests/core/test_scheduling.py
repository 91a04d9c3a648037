"""The turn: one coroutine of a service runs at a time, handed on in skynet's order."""

import functools
from collections import deque

import trio
import trio.testing
from hypothesis import given, settings, strategies as st

import skypy
from skypy.testing import open_test_node


async def probe_order():
    """What skynet's scheduling probe (forks, a waiter, a timeout(0) and yields) prints, run in a fresh service."""
    order = []

    async def probe():
        async def waiter():
            order.append("waiter-wait")
            await skypy.wait("waiter")
            order.append("waiter-woken")

        skypy.fork(lambda: order.append("fork1"))
        skypy.fork(waiter)
        skypy.timeout(0, lambda: order.append("timeout0"))
        order.append("main-before-yield")
        await skypy.yield_()
        order.append("main-after-yield")
        skypy.wakeup("waiter")
        order.append("main-after-wakeup-call")
        await skypy.yield_()
        order.append("main-after-yield2")

    await skypy.newservice(probe)
    await trio.testing.wait_all_tasks_blocked()
    return order


async def test_probe_prints_skynets_order_every_time(node):
    """The order skynet prints, in 50 fresh services: trio's run order is random, this must not be."""
    expected = [
        "main-before-yield", "fork1", "waiter-wait", "timeout0", "main-after-yield",
        "main-after-wakeup-call", "waiter-woken", "main-after-yield2",
    ]
    for _ in range(50):
        assert await probe_order() == expected


# --- a reference model of skynet's scheduler, and random programs checked against it ---

STEP = st.one_of(
    st.just(("log",)),
    st.just(("yield",)),
    st.just(("wait",)),
    st.just(("trio",)),
    st.tuples(st.just("wakeup"), st.integers(0, 4)),
)


def draw_bodies(draw, steps, most, starts):
    """Up to `most` coroutine bodies of up to 6 `steps` each; each body after the first is
    started, at some point of an earlier one, by one of `starts` ("fork", "timeout0")."""
    count = draw(st.integers(1, most))
    bodies = [draw(st.lists(steps, max_size=6)) for _ in range(count)]
    for child in range(1, count):
        parent = draw(st.integers(0, child - 1))
        how = draw(st.sampled_from(starts))
        where = draw(st.integers(0, len(bodies[parent])))
        bodies[parent].insert(where, (how, child))
    return bodies


@st.composite
def programs(draw):
    """Up to 5 coroutines; each one after the first is started by a fork or timeout(0) of an earlier one."""
    return draw_bodies(draw, STEP, 5, ["fork", "timeout0"])


def model_trace(bodies):
    """What skynet's order gives: woken coroutines, then forks, then the mailbox."""
    trace, ready, forks, mailbox, waiting = [], deque(), deque(), deque(), set()
    pcs = [0] * len(bodies)

    def run(k):
        while pcs[k] < len(bodies[k]):
            step = bodies[k][pcs[k]]
            pcs[k] += 1
            if step[0] == "log":
                trace.append((k, pcs[k]))
            elif step[0] == "fork":
                forks.append(step[1])
            elif step[0] == "timeout0":
                mailbox.append(step[1])
            elif step[0] == "yield":
                mailbox.append(k)
                return
            elif step[0] == "wait":
                waiting.add(k)
                return
            elif step[0] == "wakeup" and step[1] in waiting:
                waiting.discard(step[1])
                ready.append(step[1])

    run(0)
    while ready or forks or mailbox:
        run((ready or forks or mailbox).popleft())
    return trace


async def run_program(bodies):
    trace = []

    async def coroutine(k):
        for pc, step in enumerate(bodies[k], 1):
            if step[0] == "log":
                trace.append((k, pc))
            elif step[0] == "fork":
                skypy.fork(coroutine, step[1])
            elif step[0] == "timeout0":
                skypy.timeout(0, functools.partial(coroutine, step[1]))
            elif step[0] == "yield":
                await skypy.yield_()
            elif step[0] == "wait":
                await skypy.wait(k)
            elif step[0] == "trio":
                await trio.sleep(0)  # not a skypy primitive: keeps the turn
            elif step[0] == "wakeup":
                skypy.wakeup(step[1])

    addr = await skypy.newservice(lambda: skypy.fork(coroutine, 0))
    await trio.testing.wait_all_tasks_blocked()
    await skypy.kill(addr)
    return trace


@settings(max_examples=150, deadline=None)
@given(bodies=programs())
async def test_random_programs_follow_the_reference_order(bodies):
    async with open_test_node():
        assert await run_program(bodies) == model_trace(bodies)


async def test_at_most_one_coroutine_of_a_service_runs_while_others_interleave(node):
    """Many services calling each other, each coroutine awaiting trio in the middle of its turn."""
    violations = []

    async def worker():
        active = []

        async def handler(session, source, depth, peer):
            for _ in range(3):
                if active:
                    violations.append(skypy.self())
                active.append(session)
                await trio.sleep(0)  # other services run; this one must not
                await trio.sleep(0)
                active.remove(session)
                if depth and peer:
                    await skypy.call(peer, "lua", depth - 1, None)
                else:
                    await skypy.yield_()
            skypy.ret(depth)

        skypy.dispatch("lua", handler)

    workers = [await skypy.newservice(worker) for _ in range(4)]
    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(node.call, workers[i % 4], "lua", 2, workers[(i + 1) % 4])
    assert violations == []


def slow_and_quick(order, wait):
    """A service whose "lua" handler awaits `wait()` mid-way and whose "text" handler answers at once."""

    async def service():
        async def slow(session, source):
            order.append("slow-start")
            await wait()
            order.append("slow-end")
            skypy.ret()

        skypy.dispatch("lua", slow)
        skypy.dispatch("text", lambda session, source: (order.append("quick"), skypy.ret()))

    return service


async def test_trio_await_inside_a_handler_keeps_the_turn(node):
    order = []
    gate = trio.Event()
    addr = await skypy.newservice(slow_and_quick(order, gate.wait))  # a plain trio await
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.call, addr, "lua")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(node.call, addr, "text")
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["slow-start"]
        gate.set()
    assert order == ["slow-start", "slow-end", "quick"]


async def test_unlocked_await_lets_other_messages_run(node):
    order = []
    gate = trio.Event()
    addr = await skypy.newservice(slow_and_quick(order, lambda: skypy.unlocked(gate.wait())))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(node.call, addr, "lua")
        await trio.testing.wait_all_tasks_blocked()
        await node.call(addr, "text")
        assert order == ["slow-start", "quick"]
        gate.set()
    assert order == ["slow-start", "quick", "slow-end"]


async def test_parallel_calls_from_one_handler_through_unlocked_nursery(node):
    async def echo_service():
        async def echo(session, source, x):
            await skypy.sleep(0)
            skypy.ret(x)

        skypy.dispatch("lua", echo)

    echoes = [await skypy.newservice(echo_service) for _ in range(3)]

    async def fan_out():
        results = {}

        async def one(addr):
            results[addr] = await skypy.call(addr, "lua", addr)

        async with trio.open_nursery() as nursery:
            for addr in echoes:
                nursery.start_soon(one, addr)
        return results

    async def service():
        async def gather(session, source):
            skypy.ret(await skypy.unlocked(fan_out()))

        skypy.dispatch("lua", gather)

    addr = await skypy.newservice(service)
    assert await skypy.call(addr, "lua") == {a: a for a in echoes}


async def test_wakeup_takes_effect_when_the_waker_suspends(node):
    order = []

    async def service():
        async def waiter():
            await skypy.wait("token")
            order.append("woken")

        skypy.fork(waiter)
        await skypy.yield_()
        assert skypy.wakeup("token") is True
        order.append("waker-continues")
        assert skypy.wakeup("token") is False  # already woken
        await skypy.yield_()
        order.append("waker-after-yield")

    await skypy.newservice(service)
    assert order == ["waker-continues", "woken", "waker-after-yield"]


async def test_a_wakeup_sent_while_the_block_waits_is_not_lost(node):
    """The block's task waits without holding the turn; its token is registered before anything runs."""
    token, ready = object(), object()

    async def waker():
        await skypy.wait(ready)
        skypy.wakeup(token)

    skypy.fork(waker)
    await skypy.yield_()  # the fork now waits on `ready`
    skypy.wakeup(ready)  # the waker is queued to resume first...
    with trio.fail_after(1):
        await skypy.wait(token)  # ...and wakes `token` once this task is parked


async def test_a_coroutine_woken_then_cancelled_resumes_once(node):
    """wakeup queues it, then its cancel scope is cancelled before it runs: one resumption, no crash."""
    seen = []

    async def service():
        scopes = []

        async def waiter():
            with trio.CancelScope() as scope:
                scopes.append(scope)
                await skypy.wait("token")
                seen.append("woken")
                await skypy.yield_()
                seen.append("not reached: cancelled at the next checkpoint")
            seen.append("cancelled" if scope.cancelled_caught else "finished")

        skypy.fork(waiter)
        await skypy.yield_()
        skypy.wakeup("token")
        scopes[0].cancel()
        await skypy.yield_()

    with trio.fail_after(5):
        await skypy.newservice(service)
        await trio.testing.wait_all_tasks_blocked()
    assert seen == ["woken", "cancelled"]


async def test_cancelling_a_node_from_outside_ends_every_service():
    """A cancel scope around open_node: parked coroutines, idle workers and loops all end, once each."""

    async def sleeper():
        async def nap(session, source):
            await skypy.sleep(3600)

        skypy.dispatch("lua", nap)

    async def caller(target):
        async def ask(session, source):
            await skypy.call(target, "lua")

        skypy.dispatch("lua", ask)

    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            async with open_test_node() as node:
                target = await skypy.newservice(sleeper)
                asker = await skypy.newservice(caller, target)
                skypy.send(asker, "lua")
                await trio.testing.wait_all_tasks_blocked()
                services = list(node.node.services.values())
                scope.cancel()
                await trio.sleep_forever()
    assert scope.cancelled_caught
    assert all(svc.finished.is_set() for svc in services)
    assert node.crashes == []
