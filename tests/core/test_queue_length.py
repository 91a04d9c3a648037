"""skypy.lowlevel.queue_length: how far behind another service is, for a service that feeds it."""

import trio
import trio.testing

import skypy
from skypy.lowlevel import queue_length


async def test_queue_length_counts_the_messages_waiting_for_a_busy_service(node):
    released = trio.Event()

    async def busy():
        async def handler(session, source):
            await released.wait()  # keeps the turn: later messages wait

        skypy.dispatch("lua", handler)

    addr = await node.newservice(busy)
    for _ in range(4):
        skypy.send(addr, "lua")
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()
    assert queue_length(addr) == 3  # the first is being handled
    released.set()


async def test_queue_length_of_a_gone_service_or_an_unknown_name_is_0(node):
    async def idle():
        pass

    addr = await node.newservice(idle)
    await skypy.kill(addr)
    assert (queue_length(addr), queue_length(".nobody")) == (0, 0)
