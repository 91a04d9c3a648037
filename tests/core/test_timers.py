"""sleep, timeout, wait/wakeup and now(), on trio's MockClock (exact and instant)."""

import pytest
import trio
import trio.testing

import skypy


async def test_sleep_lasts_exactly_its_seconds(node, autojump_clock):
    start = trio.current_time()
    assert await skypy.sleep(2.5) is None
    assert trio.current_time() - start == 2.5


async def test_now_counts_seconds_since_the_node_started(node, autojump_clock):
    before = skypy.now()
    await skypy.sleep(1.25)
    assert skypy.now() - before == 1.25


async def test_sleep_broken_by_wakeup_returns_break(node, autojump_clock):
    results = []

    async def service():
        async def sleeper():
            results.append(await skypy.sleep(100, "nap"))
            results.append(skypy.now())

        skypy.fork(sleeper)
        await skypy.sleep(1)
        skypy.wakeup("nap")

    await skypy.newservice(service)
    await trio.testing.wait_all_tasks_blocked()
    assert results[0] == "BREAK" and results[1] < 100


async def test_a_broken_sleeps_timer_is_dropped_quietly(node, logs, autojump_clock):
    async def service():
        async def sleeper():
            await skypy.sleep(10, "nap")

        skypy.fork(sleeper)
        await skypy.yield_()
        skypy.wakeup("nap")

    await skypy.newservice(service)
    await skypy.sleep(20)
    assert not any("Unknown session" in text for _, text in logs)


async def test_timeout_runs_the_function_as_a_coroutine_of_the_service(node, autojump_clock):
    fired = []

    async def service():
        async def later():
            fired.append((skypy.self(), skypy.now()))
            await skypy.sleep(1)
            fired.append("after its own sleep")

        skypy.timeout(3, later)

    addr = await skypy.newservice(service)
    start = skypy.now()
    await skypy.sleep(5)
    assert fired[0][0] == addr and fired[0][1] - start == 3
    assert fired[1] == "after its own sleep"


async def test_timers_with_equal_deadlines_fire_in_the_order_set(node, autojump_clock):
    fired = []

    async def service():
        for n in range(10):
            skypy.timeout(1, lambda n=n: fired.append(n))

    await skypy.newservice(service)
    await skypy.sleep(2)
    assert fired == list(range(10))


async def test_timeout_zero_and_sleep_zero_queue_behind_waiting_messages(node):
    order = []

    async def service():
        async def first(session, source):
            skypy.timeout(0, lambda: order.append("timeout0"))
            order.append("first")
            await skypy.sleep(0)
            order.append("first-resumed")

        skypy.dispatch("lua", first)
        skypy.dispatch("text", lambda s, src, label: order.append(label))

    addr = await skypy.newservice(service)
    skypy.send(addr, "lua")
    skypy.send(addr, "text", "queued-before")
    await trio.testing.wait_all_tasks_blocked()
    assert order == ["first", "queued-before", "timeout0", "first-resumed"]


async def test_a_coroutine_looping_on_yield_lets_the_rest_of_the_node_run(node):
    # Its own wake-up is always next, so it never has to park: the service
    # must still give trio a turn now and then, or nothing else ever runs.
    spinning = True
    rounds = 0

    async def service():
        async def spin():
            nonlocal rounds
            while spinning:
                rounds += 1
                await skypy.yield_()

        skypy.fork(spin)

    await skypy.newservice(service)
    with trio.fail_after(10):
        while rounds < 1000:
            await trio.sleep(0)  # this task is the rest of the node
    spinning = False


async def test_wait_suspends_until_wakeup(node):
    order = []

    async def service():
        async def waiter():
            order.append("waiting")
            await skypy.wait("signal")
            order.append("woken")

        skypy.fork(waiter)
        skypy.dispatch("lua", lambda s, src: (order.append("wakeup"), skypy.wakeup("signal"), skypy.ret()))

    addr = await skypy.newservice(service)
    await trio.testing.wait_all_tasks_blocked()
    assert order == ["waiting"]
    await skypy.call(addr, "lua")
    await trio.testing.wait_all_tasks_blocked()
    assert order == ["waiting", "wakeup", "woken"]


async def test_wakeup_of_nobody_returns_false(node):
    assert skypy.wakeup("nobody waits on this") is False


async def test_a_call_timeout_cancels_only_that_call(node, autojump_clock):
    async def service():
        async def slow(session, source, seconds):
            await skypy.sleep(seconds)
            skypy.ret(seconds)

        skypy.dispatch("lua", slow)

    addr = await skypy.newservice(service)
    with pytest.raises(trio.TooSlowError):
        await skypy.call(addr, "lua", 10, timeout=1)
    assert await skypy.call(addr, "lua", 2, timeout=5) == 2
