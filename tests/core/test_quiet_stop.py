"""Ending services is quiet: what fails in the last step of a service being retired
(a call to a service gone too) is the ending itself, not a crash."""

import trio
import trio.testing

import skypy
from tests.helpers.services import echo_service


async def test_a_retired_services_last_step_calling_a_gone_service_logs_no_crash(node, logs):
    released = trio.Event()
    gone = await node.newservice(echo_service)

    async def caller():
        async def handler(session, source):
            await released.wait()  # not a skypy primitive: rescheduled by trio, not by the turn
            await skypy.call(gone, "lua", "are you there")

        skypy.dispatch("lua", handler)

    addr = await node.newservice(caller)
    skypy.send(addr, "lua")
    with trio.fail_after(5):
        await trio.testing.wait_all_tasks_blocked()
    await skypy.kill(gone)
    released.set()  # the handler is rescheduled; it takes its step after the kill below
    await skypy.kill(addr)
    assert node.crashes == []
    assert not [text for _, text in logs if "raised" in text]

