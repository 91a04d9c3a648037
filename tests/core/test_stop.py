"""Graceful stop: stop hooks run while the service still serves, then it ends; node shutdown uses them."""

import pytest
import trio

import skypy
from skypy import supervisor
from tests.helpers.services import echo_service, write_service


async def test_a_graceful_kill_runs_the_stop_hook_while_the_service_still_serves_calls(node):
    served = []

    async def service():
        async def stopping():
            # Callers are still answered while the hook runs.
            await skypy.call(skypy.self(), "lua", "during stop")
            served.append("hook done")

        skypy.on_stop(stopping)
        skypy.dispatch("lua", lambda session, source, what: (served.append(what), skypy.ret())[1])

    addr = await skypy.newservice(service)
    await skypy.kill(addr, graceful=True)
    assert served == ["during stop", "hook done"]
    assert addr not in node.node.services


async def test_a_graceful_kill_tells_monitors_killed_and_a_plain_kill_skips_the_hooks(node):
    ran = []
    reasons = []

    async def service():
        async def stopping():
            ran.append(skypy.self())

        skypy.on_stop(stopping)

    graceful = await skypy.newservice(service)
    plain = await skypy.newservice(service)
    for addr in (graceful, plain):
        skypy.monitor(addr, lambda h, r: reasons.append(r))
    await skypy.kill(graceful, graceful=True)
    await skypy.kill(plain)
    await skypy.sleep(0)
    assert ran == [graceful]
    assert reasons == ["killed", "killed"]


async def test_stop_hooks_run_newest_first(node):
    order = []

    async def service():
        async def first():
            order.append("first")

        async def second():
            order.append("second")

        skypy.on_stop(first)
        skypy.on_stop(second)

    await skypy.kill(await skypy.newservice(service), graceful=True)
    assert order == ["second", "first"]


async def test_a_hook_over_its_timeout_is_killed(node, autojump_clock, logs):
    async def service():
        async def forever():
            await skypy.sleep(3600)

        skypy.on_stop(forever)

    addr = await skypy.newservice(service)
    started = trio.current_time()
    await skypy.kill(addr, graceful=True, timeout=1.5)
    assert trio.current_time() - started == pytest.approx(1.5)
    assert addr not in node.node.services
    assert any("stop hooks ran over 1.5 s" in text for _, text in logs)


async def test_node_shutdown_stops_services_newest_first_supervisors_stopping_their_children():
    order = []

    def stopper(label):
        async def main():
            async def stopping():
                order.append(label)

            skypy.on_stop(stopping)

        main.__qualname__ = label
        return main

    async with skypy.open_node() as running:
        await running.newservice(stopper("old"))
        await supervisor.start([supervisor.child(stopper("child1")), supervisor.child(stopper("child2"))])
        await running.newservice(stopper("new"))
    assert order == ["new", "child2", "child1", "old"]


async def test_node_shutdown_kills_what_overruns_the_shutdown_timeout(autojump_clock):
    async def stuck():
        async def forever():
            await skypy.sleep(3600)

        skypy.on_stop(forever)

    async with skypy.open_node(shutdown={"timeout": 2.0}) as running:
        await running.newservice(stuck)
        started = trio.current_time()
    assert trio.current_time() - started == pytest.approx(2.0)
    assert list(running.node.services) == []


async def test_a_bounded_mailbox_refuses_calls_with_overloaded_and_counts_dropped_sends(node):
    async def busy():
        skypy.mailbox_limit(2)

        async def slow(session, source):
            await skypy.sleep(1)

        skypy.dispatch("lua", slow)

    addr = await skypy.newservice(busy)
    target = node.node.services[addr]
    for _ in range(2):
        skypy.send(addr, "lua")
    # The service has not run since (this test holds the turn): two queued, the third send and a call refused.
    queued = len(target.mailbox)
    skypy.send(addr, "lua")
    with pytest.raises(skypy.Overloaded, match="mailbox_limit is 2"):
        await skypy.call(addr, "lua")
    assert queued == 2 and target.mailbox.dropped == 2


async def test_answers_get_into_a_full_bounded_mailbox(node):
    async def bounded():
        async def ask(session, source):
            skypy.mailbox_limit(0)  # from now on, nothing but answers gets in
            skypy.ret(await skypy.call(echo, "lua", "pong"))

        skypy.dispatch("lua", ask)

    echo = await skypy.newservice(echo_service)
    addr = await skypy.newservice(bounded)
    assert await skypy.call(addr, "lua") == "pong"
    with pytest.raises(skypy.Overloaded):
        await skypy.call(addr, "lua")


async def test_a_mailbox_limit_holds_through_a_reload_and_log_lifts_it(node, tmp_path):
    write_service(tmp_path, "bounded", "import skypy\nasync def main():\n    skypy.mailbox_limit(0)\n")
    addr = await skypy.newservice("bounded")
    await skypy.reload(addr)
    with pytest.raises(skypy.Overloaded):
        await skypy.call(addr, "debug", "PING")
    write_service(tmp_path, "bounded", "import skypy\nasync def main():\n    skypy.mailbox_limit(0, overflow='log')\n")
    node.node.loader.clear()
    await skypy.reload(addr)
    await skypy.call(addr, "debug", "PING")


async def test_dead_letters_are_counted_and_logged_once_per_second(node, logs, autojump_clock):
    addr = await skypy.newservice(lambda: None)
    await skypy.kill(addr)
    for _ in range(50):
        skypy.send(addr, "lua")
    assert node.node.dead_letters.count == 50
    assert len([text for _, text in logs if "drop message to dead address" in text]) == 1
    await skypy.sleep(1.5)
    skypy.send(addr, "lua")
    assert [text for _, text in logs if "drop message to dead address" in text][-1].endswith("(50 since the last line)")
