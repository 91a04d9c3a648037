"""The watchdogs: mailbox overload, and handlers that hold the node in an endless loop."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

import skypy
from skypy.errors import ConfigError

SKYPY = str(Path(sys.executable).parent / "skypy")
LOOP_REPORT = "A message from [ {src} ] to [ {dst} ] maybe in an endless loop"


async def spinner():
    """A service whose "spin" request never ends by itself, and that answers "next" afterwards."""

    def handler(session, source, what):
        if what == "spin":
            while True:
                pass
        skypy.ret(what)

    async def coroutine_handler(session, source):
        await skypy.sleep(0)
        while True:
            skypy.self()  # spends its time in skypy's code: the interrupt must wait for the loop's own

    skypy.dispatch("lua", handler)
    skypy.dispatch("text", coroutine_handler)


async def test_overload_is_logged_at_1024_then_at_each_doubling_and_rearmed_when_drained(node, logs):
    async def service():
        skypy.dispatch("lua", lambda session, source: None)

    addr = await skypy.newservice(service)

    def flood(n):
        for _ in range(n):
            skypy.send(addr, "lua")  # this task keeps running, so the mailbox only grows

    def overloads():
        return [t for s, t in logs if s == addr and t.startswith("May overload")]

    flood(4096)
    assert overloads() == [f"May overload, message queue length = {n}" for n in (1024, 2048, 4096)]
    await trio.testing.wait_all_tasks_blocked()  # drained
    flood(1024)
    assert overloads()[-1] == "May overload, message queue length = 1024"
    assert len(overloads()) == 4


@pytest.mark.skypy_config(watchdog={"endless": 0.2, "interrupt": 0.3})
async def test_a_handler_in_an_endless_loop_is_reported_interrupted_and_the_next_message_served(node, logs):
    addr = await skypy.newservice(spinner)
    with pytest.raises(skypy.CallError, match="Interrupted"):
        await skypy.call(addr, "lua", "spin")
    assert isinstance(node.crashes.pop().exception, skypy.Interrupted)
    assert await skypy.call(addr, "lua", "next") == "next"
    report = LOOP_REPORT.format(src=skypy.address(skypy.self()), dst=skypy.address(addr))
    assert (addr, report) in logs
    crash = next(t for s, t in logs if s == addr and "raised" in t)
    assert "while True" in crash and "skypy.Interrupted" in crash
    assert (await skypy.call(addr, "debug", "STAT"))["endless"] is True


@pytest.mark.skypy_config(watchdog={"endless": 0.2, "interrupt": 0.3})
async def test_a_coroutine_handler_looping_through_skypy_calls_is_interrupted_in_its_own_code(node):
    addr = await skypy.newservice(spinner)
    with pytest.raises(skypy.CallError, match="Interrupted"):
        await skypy.call(addr, "text")
    assert isinstance(node.crashes.pop().exception, skypy.Interrupted)
    assert await skypy.call(addr, "lua", "next") == "next"


# Were the arming lost, the watchdog's own interrupt would end the handler
# after 10 s (the test fails then, and does not hang): a handler held under
# 5 s was interrupted because it was armed.
@pytest.mark.skypy_config(watchdog={"endless": 0.2, "interrupt": 10})
async def test_a_service_armed_by_the_console_signal_is_interrupted_once_reported(node):
    addr = await skypy.newservice(spinner)
    node.node.extensions["watchdog"].arm(addr)
    with pytest.raises(skypy.CallError, match=r"interrupted after [0-4]\.\d s"):
        await skypy.call(addr, "lua", "spin")
    assert isinstance(node.crashes.pop().exception, skypy.Interrupted)
    assert not node.node.extensions["watchdog"].armed


async def test_automatic_interrupt_is_off_and_reports_come_after_5_seconds_by_default(node):
    dog = node.node.extensions["watchdog"]
    assert (dog.endless, dog.interrupt, dog.signum) == (5.0, 0, signal.SIGUSR1)


async def test_the_signal_with_no_handler_stuck_interrupts_nothing(node, logs):
    os.kill(os.getpid(), signal.SIGUSR1)
    await trio.testing.wait_all_tasks_blocked()
    assert (0, "SIGUSR1: no handler is holding the node; nothing to interrupt") in logs
    addr = await skypy.newservice(spinner)
    assert await skypy.call(addr, "lua", "fine") == "fine"


@pytest.mark.parametrize("key, value", [("endless", 0), ("interrupt", -1), ("signal", "SIGKILL"), ("nap", 1)])
async def test_bad_watchdog_keys_stop_the_node_at_start(key, value):
    with pytest.raises(ConfigError, match=f"watchdog.{key}"):
        async with skypy.open_node(watchdog={key: value}):
            pass


async def test_kill_usr1_interrupts_a_handler_that_froze_a_running_node(tmp_path):
    (tmp_path / "frozen.py").write_text(
        "import skypy\n"
        "def spin(session, source):\n"
        "    while True:\n"
        "        pass\n"
        "async def main():\n"
        "    skypy.dispatch('lua', spin)\n"
        "    skypy.send(skypy.self(), 'lua')\n"
        "    skypy.timeout(0, lambda: skypy.error('next message served'))\n"
    )
    (tmp_path / "node.toml").write_text('start = "frozen"\nservice_path = ["."]\n[watchdog]\nendless = 0.5\n')
    process = await trio.lowlevel.open_process([SKYPY, "run", "node.toml"], cwd=tmp_path, stderr=subprocess.PIPE)
    output = b""

    async def wait_for(text):
        nonlocal output
        with trio.fail_after(15):
            while text.encode() not in output:
                chunk = await process.stderr.receive_some()
                assert chunk, f"{text!r} never came: {output.decode()}"
                output += chunk

    try:
        await wait_for(f"kill -USR1 {process.pid} interrupts it")  # the alert, while the node is frozen
        process.send_signal(signal.SIGUSR1)
        await wait_for("next message served")
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            await process.wait()
    log = output.decode()
    # The log's own line comes once the node runs again, before the handler's traceback.
    reports = [line for line in log.splitlines() if line.endswith("maybe in an endless loop")]
    assert reports and all(line.startswith("[:") for line in reports), log
    assert log.index(reports[-1]) < log.index("Interrupted") < log.index("next message served")
