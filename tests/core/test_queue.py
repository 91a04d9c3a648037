"""skypy.queue(): a service's critical section, in arrival order across suspensions, re-entrant for its holder."""

import pytest
import trio

import skypy


async def test_calls_run_one_at_a_time_in_arrival_order_even_when_they_suspend(node, autojump_clock):
    cs = skypy.queue()
    trace = []

    async def step(n):
        trace.append(("in", n))
        await skypy.sleep(0.01 * (5 - n))  # later ones would finish first without the queue
        trace.append(("out", n))
        return n

    async def handler(session, source, n):
        skypy.ret(await cs(step, n))

    addr = await skypy.newservice(lambda: _serve(handler))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for n in range(5):
                nursery.start_soon(skypy.call, addr, "lua", n)
                await trio.testing.wait_all_tasks_blocked()
    assert trace == [(edge, n) for n in range(5) for edge in ("in", "out")]


async def _serve(handler):
    skypy.dispatch("lua", handler)


async def test_a_call_from_inside_a_running_one_does_not_deadlock(node):
    cs = skypy.queue()

    async def inner():
        await skypy.sleep(0)
        return "inner"

    async def outer():
        async with cs:
            return "outer+" + await cs(inner)

    with trio.fail_after(5):
        assert await cs(outer) == "outer+inner"
    assert not cs.locked


async def test_a_waiter_cancelled_in_line_leaves_it_and_the_next_gets_the_section(node, autojump_clock):
    cs = skypy.queue()
    order = []
    release = object()

    async def holder():
        async with cs:
            order.append("holder")
            await skypy.wait(release)

    async def hopeful():
        with trio.move_on_after(0.01):
            async with cs:
                order.append("hopeful")

    async def patient():
        async with cs:
            order.append("patient")

    async def service():
        skypy.fork(holder)
        skypy.fork(hopeful)
        skypy.fork(patient)
        await skypy.sleep(0.05)
        skypy.wakeup(release)
        await skypy.sleep(0.01)
        order.append("done")

    with trio.fail_after(5):
        await skypy.newservice(service)
    assert order == ["holder", "patient", "done"]


async def test_a_queue_belongs_to_the_service_that_first_uses_it(node):
    cs = skypy.queue()
    async with cs:
        pass

    async def other():
        async with cs:
            pass

    with pytest.raises(skypy.CallError, match="each service needs its own"):
        await skypy.newservice(other)
    assert "each service needs its own" in str(node.crashes.pop().exception)
