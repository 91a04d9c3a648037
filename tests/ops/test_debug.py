"""The debug protocol every service answers without user code: STAT, TASK, INFO, EXIT, PING, LINK, RUN, GC, MEM."""

from pathlib import Path
from time import perf_counter

import pytest
import trio.testing

import skypy
from tests.helpers.services import write_service


async def idle_service():
    skypy.dispatch("lua", lambda session, source, *args: skypy.ret(*args))


def spin(seconds):
    end = perf_counter() + seconds
    while perf_counter() < end:
        pass


async def test_stat_reports_cpu_messages_mailbox_and_suspended_tasks(node):
    async def service():
        async def handler(session, source):
            await skypy.wait("parked")

        skypy.dispatch("lua", handler)

    addr = await skypy.newservice(service)
    skypy.send(addr, "lua")
    skypy.send(addr, "lua")  # the second waits on the same token: it fails and is logged
    await trio.testing.wait_all_tasks_blocked()
    assert "wait token 'parked' is already in use" in str(node.crashes.pop().exception)
    stat = await skypy.call(addr, "debug", "STAT")
    assert set(stat) == {"cpu", "message", "mqlen", "task"}
    assert stat["task"] == 1 and stat["mqlen"] == 0
    assert stat["message"] == 3  # two sends and this STAT
    assert stat["cpu"] > 0


async def test_stat_counts_the_messages_queued_behind_it(node):
    release = trio.Event()
    stats = []

    async def service():
        async def hold(session, source):
            await release.wait()  # not a skypy primitive: the handler keeps the turn

        skypy.dispatch("text", hold)
        skypy.dispatch("lua", lambda session, source: None)

    async def ask(addr):
        stats.append(await skypy.call(addr, "debug", "STAT"))

    addr = await skypy.newservice(service)
    skypy.send(addr, "text")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, addr)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(3):
            skypy.send(addr, "lua")
        release.set()
    assert stats[0]["mqlen"] == 3


async def test_cpu_of_a_handler_run_inline_by_its_caller_is_charged_to_the_callee(node):
    async def service():
        skypy.dispatch("lua", lambda session, source: skypy.ret(spin(0.05)))

    addr = await skypy.newservice(service)
    before = (await skypy.call(skypy.self(), "debug", "STAT"))["cpu"]
    await skypy.call(addr, "lua")  # an idle callee: its handler runs in this task
    assert (await skypy.call(addr, "debug", "STAT"))["cpu"] >= 0.05
    assert (await skypy.call(skypy.self(), "debug", "STAT"))["cpu"] - before < 0.04


async def test_task_gives_each_suspended_coroutine_its_session_and_stack(node):
    async def service():
        async def napping_handler(session, source):
            await skypy.sleep(1000)

        skypy.dispatch("lua", napping_handler)

    addr = await skypy.newservice(service)
    skypy.send(addr, "lua")
    await trio.testing.wait_all_tasks_blocked()
    tasks = await skypy.call(addr, "debug", "TASK")
    [(key, stack)] = tasks.items()
    assert key.startswith("session ")
    assert "napping_handler" in stack and "await skypy.sleep(1000)" in stack
    assert f"{Path(trio.__file__).parent}" not in stack  # trio's own frames are left out


async def test_info_answers_with_the_info_func_and_none_without_one(node):
    async def service():
        skypy.info_func(lambda *args: {"players": 3, "args": args})

    addr = await skypy.newservice(service)
    assert await skypy.call(addr, "debug", "INFO", "x") == {"players": 3, "args": ("x",)}
    plain = await skypy.newservice(idle_service)
    assert await skypy.call(plain, "debug", "INFO") is None


async def test_info_func_may_be_async(node):
    async def service():
        async def info():
            await skypy.sleep(0)
            return "slept"

        skypy.info_func(info)

    addr = await skypy.newservice(service)
    assert await skypy.call(addr, "debug", "INFO") == "slept"


async def test_exit_ends_the_service(node, logs):
    addr = await skypy.newservice(idle_service)
    skypy.send(addr, "debug", "EXIT")
    await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(skypy.CallError, match="invalid address"):
        await skypy.call(addr, "debug", "PING")
    assert (addr, "KILL self") in logs


async def test_ping_answers_none(node):
    addr = await skypy.newservice(idle_service)
    assert await skypy.call(addr, "debug", "PING") is None


async def test_link_is_answered_by_a_failure_when_the_service_exits(node):
    addr = await skypy.newservice(idle_service)
    failed = trio.Event()

    async def linker():
        with pytest.raises(skypy.CallError, match="exited"):
            await skypy.call(addr, "debug", "LINK")
        failed.set()

    await skypy.newservice(lambda: skypy.fork(linker))
    await trio.testing.wait_all_tasks_blocked()
    assert not failed.is_set()
    await skypy.kill(addr)
    await failed.wait()


async def test_run_executes_code_in_the_service_module_and_returns_its_prints(node, tmp_path):
    write_service(tmp_path, "greeter", (
        "import skypy\n"
        "greeting = 'hello'\n"
        "async def main():\n"
        "    skypy.dispatch('lua', lambda s, src: skypy.ret(greeting))\n"
    ))
    addr = await skypy.newservice("greeter")
    ok, output = await skypy.call(addr, "debug", "RUN", "print(greeting)\ngreeting = 'patched'", "fix.py")
    assert (ok, output) == (True, "hello\n")
    assert await skypy.call(addr, "lua") == "patched"


async def test_run_returns_the_traceback_when_the_code_raises(node):
    addr = await skypy.newservice(idle_service)
    ok, output = await skypy.call(addr, "debug", "RUN", "print('before')\n1 / 0", "bad.py")
    assert not ok
    assert output.startswith("before\n") and 'File "bad.py", line 2' in output and "ZeroDivisionError" in output
    assert await skypy.call(addr, "lua", "still fine") == "still fine"


async def test_gc_runs_a_collection(node):
    addr = await skypy.newservice(idle_service)
    assert isinstance(await skypy.call(addr, "debug", "GC"), int)


async def test_mem_counts_the_objects_the_service_holds(node, tmp_path):
    write_service(tmp_path, "hoard", (
        "import skypy\n"
        "hoard = []\n"
        "async def main(n):\n"
        "    hoard.extend(bytes(1024) for _ in range(n))\n"
    ))
    small = await skypy.call(await skypy.newservice("hoard", 0), "debug", "MEM")
    big = await skypy.call(await skypy.newservice("hoard", 2048), "debug", "MEM")
    assert 0 < small < 64
    assert 2048 < big - small < 2048 * 1.2


async def test_a_service_may_replace_the_debug_handler(node):
    async def service():
        skypy.dispatch("debug", lambda session, source, *args: skypy.ret("mine"))

    addr = await skypy.newservice(service)
    assert await skypy.call(addr, "debug", "STAT") == "mine"
