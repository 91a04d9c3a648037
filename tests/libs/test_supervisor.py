"""skypy.supervisor: children started in order, restarted by OTP's rules, stopped newest first."""

import pytest
import trio

import skypy
from skypy import supervisor


def worker(log, label):
    """A child's main that records its start (and its stop, as a stop hook) in `log`."""

    async def main():
        log.append(("start", label))

        async def stopping():
            log.append(("stop", label))

        skypy.on_stop(stopping)
        skypy.dispatch("lua", lambda session, source, *args: skypy.ret(label))

    main.__qualname__ = label
    return main


async def settle():
    """Let the supervisor take what is queued for it (monitor callbacks, restarts)."""
    for _ in range(20):
        await skypy.sleep(0)


async def test_children_start_in_order_and_are_listed(node):
    log = []
    sup = await supervisor.start([supervisor.child(worker(log, "a"), name=".a"), supervisor.child(worker(log, "b"))])
    assert log == [("start", "a"), ("start", "b")]
    listed = await supervisor.children(sup)
    assert [(c.id, c.restart) for c in listed] == [(".a", "permanent"), ("b", "permanent")]
    assert listed[0].handle == skypy.localname(".a")
    assert supervisor.tree() == {sup: [c.handle for c in listed]}


async def test_one_for_one_restarts_only_the_child_that_ended_under_its_name(node):
    log = []
    sup = await supervisor.start([supervisor.child(worker(log, "a"), name=".a"), supervisor.child(worker(log, "b"))])
    old = skypy.localname(".a")
    log.clear()
    await skypy.kill(".a")
    await settle()
    assert log == [("start", "a")]
    assert skypy.localname(".a") not in (None, old)
    assert await skypy.call(".a", "lua") == "a"
    assert len(await supervisor.children(sup)) == 2


@pytest.mark.parametrize(
    "strategy, killed, expected",
    [
        # one_for_all stops the others, newest first, and restarts all.
        ("one_for_all", 0, [("stop", "c"), ("stop", "b"), ("start", "a"), ("start", "b"), ("start", "c")]),
        # rest_for_one restarts it and those started after it.
        ("rest_for_one", 1, [("stop", "c"), ("start", "b"), ("start", "c")]),
    ],
)
async def test_a_strategy_stops_and_restarts_the_children_it_names_in_order(node, strategy, killed, expected):
    log = []
    specs = [supervisor.child(worker(log, x)) for x in "abc"]
    sup = await supervisor.start(specs, strategy=strategy)
    first = await supervisor.children(sup)
    log.clear()
    await skypy.kill(first[killed].handle)
    await settle()
    assert log == expected
    untouched = [c.handle for c in first[:killed]]
    assert [c.handle for c in (await supervisor.children(sup))[:killed]] == untouched


async def test_transient_is_restarted_after_a_crash_but_not_after_exit(node):
    log = []

    async def quitter():
        log.append("start")
        skypy.crash_policy("exit")

        def act(session, source, how):
            if how == "exit":
                skypy.exit()
            raise RuntimeError("boom")

        skypy.dispatch("lua", act)

    sup = await supervisor.start([supervisor.child(quitter, name=".q", restart="transient")])
    with pytest.raises(skypy.CallError):
        await skypy.call(".q", "lua", "crash")
    await settle()
    assert log == ["start", "start"]
    node.crashes.clear()
    with pytest.raises(skypy.CallError):
        await skypy.call(".q", "lua", "exit")
    await settle()
    assert log == ["start", "start"]
    assert (await supervisor.children(sup))[0].handle is None


async def test_temporary_is_never_restarted_even_by_a_siblings_restart(node):
    log = []
    specs = [supervisor.child(worker(log, "a")), supervisor.child(worker(log, "t"), restart="temporary")]
    sup = await supervisor.start(specs, strategy="one_for_all")
    first = await supervisor.children(sup)
    log.clear()
    await skypy.kill(first[0].handle)
    await settle()
    assert log == [("stop", "t"), ("start", "a")]
    assert [c.id for c in await supervisor.children(sup)] == ["a"]


async def test_too_many_restarts_stop_every_child_and_end_the_supervisor_with_crash(node):
    log = []
    events = []
    specs = [supervisor.child(worker(log, x)) for x in "ab"]
    sup = await supervisor.start(specs, intensity=2, period=10)
    skypy.monitor(sup, lambda h, r: events.append(r))
    for _ in range(3):
        log.clear()
        await skypy.kill((await supervisor.children(sup))[0].handle)
        await settle()
    assert log == [("stop", "b")]
    assert events == ["crash"]
    assert sup not in node.node.services


async def test_restarts_older_than_the_period_are_forgotten(node, autojump_clock):
    log = []
    sup = await supervisor.start([supervisor.child(worker(log, "a"))], intensity=1, period=1.0)
    for _ in range(3):
        await skypy.kill((await supervisor.children(sup))[0].handle)
        await settle()
        await skypy.sleep(1.5)
    assert log.count(("start", "a")) == 4


async def test_a_child_that_cannot_start_counts_as_restarts_then_start_fails(node):
    attempts = []

    async def broken():
        attempts.append(1)
        raise RuntimeError("no database")

    with pytest.raises(skypy.CallError):
        await supervisor.start([supervisor.child(broken)], intensity=2)
    assert len(attempts) == 3
    node.crashes.clear()


async def test_calls_in_flight_to_the_old_instance_fail_and_the_name_reaches_the_new(node):
    async def slow():
        async def wait_forever(session, source):
            await skypy.sleep(3600)

        skypy.dispatch("lua", wait_forever)

    await supervisor.start([supervisor.child(slow, name=".slow")])
    old = skypy.localname(".slow")
    failures = []

    async def caller():
        try:
            await skypy.call(".slow", "lua")
        except skypy.CallError as exc:
            failures.append(exc)

    skypy.fork(caller)
    await skypy.sleep(0)
    await skypy.kill(old)
    await settle()
    assert len(failures) == 1
    assert skypy.localname(".slow") not in (None, old)


async def test_simple_one_for_one_is_a_pool_started_with_extra_arguments(node):
    async def member(kind, n):
        skypy.dispatch("lua", lambda session, source: skypy.ret(kind, n))

    sup = await supervisor.start([supervisor.child(member, "pool")], strategy="simple_one_for_one")
    one = await supervisor.start_child(sup, 1)
    two = await supervisor.start_child(sup, 2)
    assert await skypy.rawcall(two, "lua") == ("pool", 2)
    await skypy.kill(one)
    await settle()
    listed = await supervisor.children(sup)
    assert len(listed) == 2 and one not in [c.handle for c in listed]
    await supervisor.terminate_child(sup, two)
    assert len(await supervisor.children(sup)) == 1


async def test_terminate_restart_and_start_child(node):
    log = []
    sup = await supervisor.start([supervisor.child(worker(log, "a"), name=".a")])
    await supervisor.terminate_child(sup, ".a")
    assert (await supervisor.children(sup))[0].handle is None
    assert skypy.localname(".a") is None
    handle = await supervisor.restart_child(sup, ".a")
    assert skypy.localname(".a") == handle
    await supervisor.start_child(sup, supervisor.child(worker(log, "b")))
    assert [c.id for c in await supervisor.children(sup)] == [".a", "b"]
    with pytest.raises(skypy.SkypyError, match="no child"):
        await supervisor.terminate_child(sup, ".nobody")


async def test_a_stop_hook_that_overruns_shutdown_is_killed(node, autojump_clock):
    events = []

    async def stubborn():
        async def forever():
            await skypy.sleep(3600)

        skypy.on_stop(forever)

    sup = await supervisor.start([supervisor.child(stubborn, shutdown=2.0)])
    child_handle = (await supervisor.children(sup))[0].handle
    skypy.monitor(child_handle, lambda h, r: events.append(r))
    started = trio.current_time()
    await supervisor.terminate_child(sup, child_handle)
    assert trio.current_time() - started == pytest.approx(2.0)
    await settle()
    assert events == ["killed"]


async def test_supervisors_nest(node):
    log = []
    inner = supervisor.nested([supervisor.child(worker(log, "leaf"), name=".leaf")], name=".inner")
    outer = await supervisor.start([inner], strategy="one_for_one")
    assert skypy.localname(".inner") in supervisor.tree()[outer]
    await skypy.kill(outer, graceful=True)
    assert log == [("start", "leaf"), ("stop", "leaf")]
    assert skypy.localname(".leaf") is None


async def test_a_killed_supervisor_takes_its_children_with_it(node):
    reasons = []
    sup = await supervisor.start([supervisor.child(worker([], "a"), name=".a")])
    skypy.monitor(".a", lambda handle, reason: reasons.append(reason))
    await skypy.kill(sup)
    await settle()
    assert reasons == ["killed"]
    assert skypy.localname(".a") is None
    await supervisor.start([supervisor.child(worker([], "a"), name=".a")])  # the name is free again
    assert skypy.localname(".a") is not None
