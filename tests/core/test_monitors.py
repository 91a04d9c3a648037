"""Monitors: a service is told once, as a new coroutine in its turn order, how another ended."""

import pytest
import trio

import skypy
from tests.helpers.services import echo_service


async def told(events, handle, reason):
    """A monitor callback that records what it was told."""
    events.append((handle, reason))


async def until(events, count=1):
    with trio.fail_after(5):
        while len(events) < count:
            await skypy.sleep(0)


async def test_a_monitor_is_told_exit_when_the_service_exits(node):
    events = []

    async def quits():
        skypy.dispatch("lua", lambda session, source: skypy.exit())

    addr = await skypy.newservice(quits)
    skypy.monitor(addr, lambda h, r: told(events, h, r))
    skypy.send(addr, "lua")
    await until(events)
    assert events == [(addr, "exit")]


async def test_a_monitor_is_told_killed(node):
    events = []
    addr = await skypy.newservice(echo_service)
    skypy.monitor(addr, lambda h, r: told(events, h, r))
    await skypy.kill(addr)
    await until(events)
    assert events == [(addr, skypy.ExitReason.KILLED)]


async def test_a_monitor_set_after_the_end_still_fires_with_the_reason(node):
    events = []
    addr = await skypy.newservice(echo_service)
    await skypy.kill(addr)
    skypy.monitor(addr, lambda h, r: told(events, h, r))
    await until(events)
    assert events == [(addr, "killed")]


async def test_a_monitor_fires_exactly_once_and_runs_behind_queued_messages(node):
    events = []
    order = []
    addr = await skypy.newservice(echo_service)
    me = skypy.self()

    def note(session, source, what):
        order.append(what)

    skypy.dispatch("lua", note)
    skypy.monitor(addr, lambda h, r: order.append("monitor"))
    skypy.monitor(addr, lambda h, r: told(events, h, r))
    skypy.send(me, "lua", "queued first")
    await skypy.kill(addr)
    await skypy.kill(addr)
    await until(events)
    await skypy.sleep(0)
    assert order == ["queued first", "monitor"]
    assert events == [(addr, "killed")]


async def test_demonitor_before_the_end_means_no_callback(node, logs):
    events = []
    addr = await skypy.newservice(echo_service)
    token = skypy.monitor(addr, lambda h, r: told(events, h, r))
    assert skypy.demonitor(token) is True
    await skypy.kill(addr)
    await skypy.sleep(0.01)
    assert events == []
    assert not [text for _, text in logs if "Unknown session" in text]


async def test_crash_policy_exit_ends_the_service_with_reason_crash(node):
    events = []

    async def fragile():
        skypy.crash_policy("exit")
        skypy.dispatch("lua", lambda session, source: 1 / 0)

    addr = await skypy.newservice(fragile)
    skypy.monitor(addr, lambda h, r: told(events, h, r))
    with pytest.raises(skypy.CallError):
        await skypy.call(addr, "lua")
    await until(events)
    assert events == [(addr, "crash")]
    assert addr not in node.node.services
    assert [crash.what for crash in node.crashes] == ["handler"]
    node.crashes.clear()


async def test_by_default_a_crash_is_logged_and_the_service_goes_on(node):
    async def fragile():
        skypy.dispatch("lua", lambda session, source, x: skypy.ret(1 / x))

    addr = await skypy.newservice(fragile)
    with pytest.raises(skypy.CallError):
        await skypy.call(addr, "lua", 0)
    assert await skypy.call(addr, "lua", 2) == 0.5
    node.crashes.clear()


async def test_a_failed_start_is_reported_as_start_failed(node):
    events = []
    watched = []

    async def broken():
        watched.append(skypy.self())
        raise RuntimeError("no")

    with pytest.raises(skypy.CallError):
        await skypy.newservice(broken)
    skypy.monitor(watched[0], lambda h, r: told(events, h, r))
    await until(events)
    assert events == [(watched[0], "start failed")]
    node.crashes.clear()


async def test_node_stopping_is_told_to_monitors_outside_the_node():
    told_reasons = []
    async with skypy.open_node() as running:
        async def watcher():
            async def on_end(handle, reason):
                told_reasons.append(reason)
            skypy.monitor(await skypy.newservice(echo_service), on_end)

        await running.newservice(watcher)
    # The watcher itself is stopped before it runs the callback: what the
    # monitor saw is checked through the table instead.
    assert running.node.monitors.endings
    assert set(running.node.monitors.endings.values()) == {"node stopping"}
