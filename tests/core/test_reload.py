"""skypy.reload: a service runs its file again in place, keeping its address, names and mailbox."""

import pytest
import trio

import skypy

COUNTER = '''
import skypy

VERSION = {version}
count = 0


def bump():
    global count
    count += 1
    return VERSION, count


async def main(start=0):
    global count
    count = start
    skypy.dispatch_commands({{"bump": bump, "version": lambda: VERSION}})
    skypy.register(".counter")
'''

CARRYING = COUNTER + '''

def reload(old):
    global count
    count = old["count"]
    skypy.dispatch_commands({{"bump": bump, "version": lambda: VERSION}})
'''


@pytest.fixture
def write(tmp_path):
    def write(source, name="counter", **values):
        (tmp_path / f"{name}.py").write_text(source.format(**values))

    return write


async def test_new_main_serves_at_the_same_address_with_the_launch_arguments(node, write):
    write(COUNTER, version=1)
    addr = await skypy.newservice("counter", 100)
    assert await skypy.call(addr, "lua", "bump") == (1, 101)
    write(COUNTER, version=2)
    await skypy.reload(addr)
    assert await skypy.call(addr, "lua", "bump") == (2, 101)  # main ran again: count from its argument
    assert await skypy.call(".counter", "lua", "version") == 2


async def test_reload_old_carries_state_over(node, write):
    write(CARRYING, version=1)
    addr = await skypy.newservice("counter")
    for _ in range(3):
        await skypy.call(addr, "lua", "bump")
    write(CARRYING, version=2)
    await skypy.reload(addr)
    assert await skypy.call(addr, "lua", "bump") == (2, 4)


async def test_services_started_after_a_reload_run_the_new_code(node, write):
    write(COUNTER, version=1)
    addr = await skypy.newservice("counter")
    write(COUNTER, version=2)
    await skypy.reload(addr)
    await skypy.kill(addr)
    assert await skypy.call(await skypy.newservice("counter"), "lua", "version") == 2


@pytest.mark.parametrize(
    "broken",
    [
        "def broken(:\n",
        "raise RuntimeError('import fails')",
        CARRYING.replace("count = old[", "raise RuntimeError('reload fails')\n    count = old[").format(version=2),
        COUNTER.replace("    skypy.register", "    raise RuntimeError('main fails')\n    skypy.register").format(version=2),
        "import skypy\n\ndef reload(old):\n"
        "    skypy.dispatch_commands({'bump': lambda: 'half'})\n"
        "    raise RuntimeError('late')\n",
    ],
    ids=["syntax error", "import raises", "reload raises", "main raises", "reload raises after dispatching"],
)
async def test_a_failing_reload_changes_nothing_but_reports_why(node, write, tmp_path, broken):
    write(CARRYING, version=1)
    addr = await skypy.newservice("counter")
    assert await skypy.call(addr, "lua", "bump") == (1, 1)
    (tmp_path / "counter.py").write_text(broken)
    with pytest.raises(skypy.ReloadError, match="failed"):
        await skypy.reload(addr)
    await node.wait_for_log("RELOAD counter failed, the old code serves on", timeout=5)
    assert await skypy.call(addr, "lua", "bump") == (1, 2)
    assert skypy.localname(".counter") == addr


async def test_messages_arriving_while_the_new_code_starts_wait_and_are_served_by_it(node, write, autojump_clock):
    write(COUNTER, version=1)
    addr = await skypy.newservice("counter")
    slow = COUNTER.replace("    count = start", "    await skypy.sleep(0.05)\n    count = start")
    write(slow, version=2)
    answers = []

    async def bump():
        answers.append(await skypy.call(addr, "lua", "bump"))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(skypy.reload, addr)
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(3):
                nursery.start_soon(bump)
    assert answers == [(2, 1), (2, 2), (2, 3)]


async def test_a_coroutine_suspended_in_the_old_code_finishes_in_the_old_code(node, write, autojump_clock):
    slow = COUNTER.replace("def bump():", "async def nap():\n    await skypy.sleep(0.05)\n    return VERSION\n\n\ndef bump():")
    slow = slow.replace('"bump": bump,', '"bump": bump, "nap": nap,')
    write(slow, version=1)
    addr = await skypy.newservice("counter")
    write(slow, version=2)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            napping = []

            async def nap():
                napping.append(await skypy.call(addr, "lua", "nap"))

            nursery.start_soon(nap)
            await trio.testing.wait_all_tasks_blocked()
            await skypy.reload(addr)
            assert await skypy.call(addr, "lua", "nap") == 2
    assert napping == [1]


async def test_a_service_started_from_a_function_cannot_be_reloaded(node):
    async def plain():
        pass

    addr = await skypy.newservice(plain)
    with pytest.raises(skypy.ReloadError, match="not started from a service file"):
        await skypy.reload(addr)


async def test_reloading_an_unknown_address_fails(node):
    with pytest.raises(skypy.ServiceNotFound):
        await skypy.reload(0xABCDEF)


# A reload that suspends halfway, as one that calls another service would:
# requests arriving meanwhile must wait for it.
SUSPENDING = COUNTER + '''

async def reload(old):
    global count
    count = old["count"]
    await skypy.sleep(0)
    skypy.dispatch_commands({{"bump": bump, "version": lambda: VERSION}})
'''

CALLERS = 20
CALLS_EACH = 100
RELOADS = 20


async def test_under_load_no_call_fails_answers_keep_order_and_calls_after_a_reload_see_new_code(node, write):
    write(SUSPENDING, version=0)
    addr = await skypy.newservice("counter")
    reloaded = [0]  # the version every call made from now on must see, at least
    seen: dict[int, list[tuple[int, int]]] = {n: [] for n in range(CALLERS)}

    async def caller(n):
        for _ in range(CALLS_EACH):
            floor = reloaded[0]
            version, count = await skypy.call(addr, "lua", "bump")
            assert version >= floor, f"a call made after reload {floor} was answered by version {version}"
            seen[n].append((version, count))
            await skypy.yield_()

    async def reloader():
        for version in range(1, RELOADS + 1):
            write(SUSPENDING, version=version)
            await skypy.reload(addr)
            reloaded[0] = version
            await skypy.sleep(0)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for n in range(CALLERS):
                nursery.start_soon(node.newservice, lambda n=n: caller(n))
            nursery.start_soon(node.newservice, reloader)
    counts = sorted(count for answers in seen.values() for _, count in answers)
    assert counts == list(range(1, CALLERS * CALLS_EACH + 1))  # none failed, none lost, state carried
    for answers in seen.values():
        assert answers == sorted(answers)  # each caller's answers in order, versions never going back
    assert await skypy.call(addr, "lua", "version") == RELOADS


async def test_reloads_of_one_service_run_one_after_another(node, write):
    write(SUSPENDING, version=1)
    addr = await skypy.newservice("counter")
    write(SUSPENDING, version=2)
    counts = []

    async def bumper():
        for _ in range(20):
            counts.append((await skypy.call(addr, "lua", "bump"))[1])
            await skypy.yield_()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(node.newservice, bumper)
                nursery.start_soon(node.newservice, lambda: skypy.reload(addr))
    # Had a reload started while another was halfway, it would have carried
    # over a count from before the other, and bumps would have been lost.
    assert sorted(counts) == list(range(1, 61))
    assert len([line for _, line in node.log_lines if line == "RELOAD counter"]) == 3


async def test_a_service_may_reload_itself(node, write):
    source = CARRYING.replace('"version": lambda: VERSION}}', '"version": lambda: VERSION, "renew": renew}}')
    source += "\n\nasync def renew():\n    await skypy.reload(skypy.self())\n    return VERSION\n"
    write(source, version=1)
    addr = await skypy.newservice("counter")
    write(source, version=2)
    with trio.fail_after(5):
        assert await skypy.call(addr, "lua", "renew") == 1  # the old coroutine ends in the old code
    assert await skypy.call(addr, "lua", "version") == 2


async def test_a_failing_main_gives_back_the_names_it_took(node, write):
    write(COUNTER, version=1)
    addr = await skypy.newservice("counter")
    taking = '    skypy.register(".counter")\n    skypy.register(".extra")\n    raise RuntimeError("late")'
    write(COUNTER.replace('    skypy.register(".counter")', taking), version=2)
    with pytest.raises(skypy.ReloadError, match="late"):
        await skypy.reload(addr)
    assert skypy.localname(".counter") == addr
    assert skypy.localname(".extra") is None


ECHO_SERVER = '''
import skypy
from skypy import socket

VERSION = {version}
clients = []


def accept(id, addr):
    skypy.fork(serve, id)


async def serve(id):
    await socket.start(id)
    clients.append(id)
    while True:
        try:
            line = await socket.readline(id)
        except socket.SocketClosed:
            return
        socket.write(id, f"{{VERSION}} {{line.decode()}}\\n".encode())


def greet():
    for id in clients:
        socket.write(id, f"{{VERSION}} greets\\n".encode())


async def main():
    id, host, port = await socket.listen("127.0.0.1", 0)
    await socket.start(id, accept)
    skypy.dispatch_commands({{"port": lambda: port, "greet": greet}})


def reload(old):
    clients.extend(old["clients"])
    skypy.dispatch_commands({{"port": lambda: None, "greet": greet}})
'''


async def test_sockets_stay_open_and_owned_across_a_reload(node, write):
    write(ECHO_SERVER, version=1)
    addr = await skypy.newservice("counter")
    port = await skypy.call(addr, "lua", "port")
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"hi\n")
        assert await stream.receive_some() == b"1 hi\n"
        write(ECHO_SERVER, version=2)
        await skypy.reload(addr)
        await skypy.call(addr, "lua", "greet")  # new code, the old connection
        assert await stream.receive_some() == b"2 greets\n"
        await stream.send_all(b"again\n")  # its reading coroutine is old code
        assert await stream.receive_some() == b"1 again\n"
        await stream.aclose()
