"""Starting, naming, finding and ending services: handles are never reused, and ending one fails what it owes."""

import pytest
import trio
import trio.testing

import skypy
from skypy.testing import open_test_node
from tests.helpers.services import echo, echo_service, write_service


async def sleeper_service():
    async def nap(session, source):
        await skypy.sleep(3600)
        skypy.ret("woke")

    skypy.dispatch("lua", nap)


async def test_address_is_printed_as_skynet_does():
    assert skypy.address(10) == ":0000000a"
    assert skypy.address(0x03000001) == ":03000001"


@pytest.mark.skypy_config(harbor=3)
async def test_handles_carry_the_harbor_in_the_top_byte(node):
    assert skypy.self() >> 24 == 3


async def test_handles_are_never_reused(node):
    first = await skypy.newservice(echo_service)
    await skypy.kill(first)
    second = await skypy.newservice(echo_service)
    assert second > first
    with pytest.raises(skypy.CallError):
        await skypy.call(first, "lua")


async def test_newservice_returns_after_main_and_serves_messages_meanwhile(node):
    order = []

    async def service():
        skypy.dispatch("lua", echo)
        order.append("main-start")
        await skypy.sleep(0)
        order.append("main-end")

    addr = await skypy.newservice(service)
    order.append("newservice-returned")
    assert order == ["main-start", "main-end", "newservice-returned"]
    assert await skypy.call(addr, "lua", 1) == 1


async def test_error_in_main_fails_newservice_and_removes_the_service(node, logs):
    async def broken():
        skypy.register(".broken")
        raise RuntimeError("cannot start")

    with pytest.raises(skypy.CallError, match="cannot start"):
        await skypy.newservice(broken)
    crash = node.crashes.pop()
    assert (crash.what, str(crash.exception)) == ("start", "cannot start")
    assert skypy.localname(".broken") is None
    assert any("RuntimeError: cannot start" in text for _, text in logs)


async def test_module_service_from_service_path_gets_args(node, tmp_path):
    write_service(tmp_path, "greeter", (
        "import skypy\n"
        "async def main(greeting):\n"
        "    skypy.dispatch('lua', lambda s, src, who: skypy.ret(f'{greeting}, {who}'))\n"
    ))
    addr = await skypy.newservice("greeter", "hello")
    assert await skypy.call(addr, "lua", "world") == "hello, world"


async def test_each_launch_gets_fresh_module_globals(node, tmp_path):
    write_service(tmp_path, "counter", (
        "import skypy\n"
        "count = 0\n"
        "def bump(session, source):\n"
        "    global count\n"
        "    count += 1\n"
        "    skypy.ret(count)\n"
        "async def main():\n"
        "    skypy.dispatch('lua', bump)\n"
    ))
    a = await skypy.newservice("counter")
    b = await skypy.newservice("counter")
    assert [await skypy.call(a, "lua") for _ in range(3)] == [1, 2, 3]
    assert await skypy.call(b, "lua") == 1


def version_source(number):
    """A service that answers every call with `number`."""
    return f"import skypy\nasync def main():\n    skypy.dispatch('lua', lambda s, src: skypy.ret({number}))\n"


async def test_compiled_code_is_cached_per_file_until_cleared(node, tmp_path):
    write_service(tmp_path, "version", version_source(1))
    assert await skypy.call(await skypy.newservice("version"), "lua") == 1
    write_service(tmp_path, "version", version_source(2))
    assert await skypy.call(await skypy.newservice("version"), "lua") == 1
    node.node.loader.clear()
    assert await skypy.call(await skypy.newservice("version"), "lua") == 2


async def test_unknown_service_name_fails_at_once(node):
    with pytest.raises(skypy.ServiceNotFound, match="nosuch"):
        await skypy.newservice("nosuch")


UNIQUE_SOURCE = (
    "import skypy\n"
    "async def main():\n"
    "    skypy.error('unique starting')\n"
    "    await skypy.sleep(0)\n"
    "    skypy.dispatch('lua', lambda s, src: skypy.ret(skypy.self()))\n"
)


async def test_uniqueservice_starts_once_for_concurrent_callers(node, logs, tmp_path):
    write_service(tmp_path, "unique", UNIQUE_SOURCE)
    handles = []

    async def ask():
        handles.append(await node.uniqueservice("unique"))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(ask)
    assert len(set(handles)) == 1 and len(handles) == 5
    assert [text for _, text in logs].count("unique starting") == 1
    assert await skypy.call(handles[0], "lua") == handles[0]


async def test_queryservice_waits_until_the_unique_service_starts(node, tmp_path):
    write_service(tmp_path, "unique", UNIQUE_SOURCE)
    found = []

    async def query():
        found.append(await node.queryservice("unique"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(query)
        await trio.testing.wait_all_tasks_blocked()
        assert found == []
        started = await node.uniqueservice("unique")
    assert found == [started]


async def test_a_unique_service_that_exited_is_started_again(node, tmp_path):
    write_service(tmp_path, "unique", UNIQUE_SOURCE)
    first = await skypy.uniqueservice("unique")
    await skypy.kill(first)
    second = await skypy.uniqueservice("unique")
    assert second != first
    assert await skypy.call(second, "lua") == second


async def test_local_names_resolve_for_send_and_call(node):
    addr = await skypy.newservice(echo_service)
    skypy.name(".echo", addr)
    assert skypy.localname(".echo") == addr
    assert await skypy.call(".echo", "lua", "by name") == "by name"


async def test_register_names_the_calling_service(node):
    async def service():
        skypy.register(".me")
        skypy.dispatch("lua", echo)

    addr = await skypy.newservice(service)
    assert skypy.localname(".me") == addr


async def test_names_must_start_with_a_dot(node):
    with pytest.raises(skypy.SkypyError, match="start with '.'"):
        skypy.register("plain")


async def test_a_name_used_by_a_live_service_cannot_be_taken(node):
    addr = await skypy.newservice(echo_service)
    skypy.name(".taken", addr)
    with pytest.raises(skypy.SkypyError, match=r"\.taken is already used"):
        skypy.register(".taken")


async def test_exit_releases_the_name_and_later_calls_fail(node):
    async def service():
        skypy.register(".short")
        skypy.dispatch("lua", lambda s, src: skypy.exit())

    await skypy.newservice(service)
    with pytest.raises(skypy.CallError):
        await skypy.call(".short", "lua")
    assert skypy.localname(".short") is None
    with pytest.raises(skypy.CallError, match=r"\.short"):
        await skypy.call(".short", "lua")


async def test_exit_fails_every_caller_waiting_on_the_service(node, logs):
    async def service():
        async def nap(session, source):
            await skypy.sleep(3600)

        skypy.dispatch("lua", nap)
        skypy.dispatch("text", lambda s, src: skypy.exit())

    addr = await skypy.newservice(service)
    failures = []

    async def caller():
        with pytest.raises(skypy.CallError, match=skypy.address(addr)) as info:
            await node.call(addr, "lua")
        failures.append(info.value)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(caller)
        await trio.testing.wait_all_tasks_blocked()
        skypy.send(addr, "text")
    assert len(failures) == 3
    assert (addr, "KILL self") in logs


async def test_exit_fails_requests_still_queued(node):
    gate = trio.Event()

    async def service():
        async def busy(session, source):
            await gate.wait()  # a trio await keeps the turn: the mailbox fills up

        skypy.dispatch("client", busy)
        skypy.dispatch("text", lambda s, src: skypy.exit())
        skypy.dispatch("lua", echo)

    addr = await skypy.newservice(service)
    skypy.send(addr, "client")
    skypy.send(addr, "text")
    results = []

    async def caller(n):
        try:
            results.append(await node.call(addr, "lua", n))
        except skypy.CallError as exc:
            results.append(str(exc))

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(caller, n)
        await trio.testing.wait_all_tasks_blocked()
        assert len(node.node.services[addr].mailbox) == 4
        gate.set()
    assert results == [f"call to {skypy.address(addr)} failed: service {skypy.address(addr)} exited (exit)"] * 3


async def test_exit_answers_pending_responders_with_errors(node):
    async def service():
        held = []
        skypy.dispatch_commands({"hold": lambda: held.append(skypy.response()), "quit": skypy.exit})

    addr = await skypy.newservice(service)
    outcome = []

    async def held_call():
        with pytest.raises(skypy.CallError, match="exited"):
            await node.call(addr, "lua", "hold")
        outcome.append("failed")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(held_call)
        await trio.testing.wait_all_tasks_blocked()
        skypy.send(addr, "lua", "quit")
    assert outcome == ["failed"]


async def test_kill_fails_a_call_whose_handler_is_asleep(node):
    addr = await skypy.newservice(sleeper_service)
    async with trio.open_nursery() as nursery:
        async def caller():
            with pytest.raises(skypy.CallError, match="killed"):
                await node.call(addr, "lua")

        nursery.start_soon(caller)
        await trio.testing.wait_all_tasks_blocked()
        await skypy.kill(addr)
    with pytest.raises(skypy.CallError):
        await skypy.call(addr, "lua")


async def test_kill_of_a_dead_address_is_a_no_op(node):
    addr = await skypy.newservice(echo_service)
    await skypy.kill(addr)
    await skypy.kill(addr)


async def test_a_crashing_handler_leaves_the_node_running(node, logs):
    async def service():
        skypy.dispatch("lua", lambda s, src: 1 / 0)

    addr = await skypy.newservice(service)
    skypy.send(addr, "lua")
    other = await skypy.newservice(echo_service)
    assert await skypy.call(other, "lua", "alive") == "alive"
    assert any(src == addr and "ZeroDivisionError" in text for src, text in logs)
    assert isinstance(node.crashes.pop().exception, ZeroDivisionError)


async def test_leaving_open_node_exits_every_service():
    async with open_test_node() as node:
        addr = await skypy.newservice(sleeper_service)
        svc = node.node.services[addr]
    assert svc.dead and svc.finished.is_set()
