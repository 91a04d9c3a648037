"""The debug console, driven as operators drive it: a TCP client on 127.0.0.1, and HTTP."""

import functools
import re
import urllib.request

import pytest
import trio
import trio.testing

import skypy
from skypy import socket
from skypy.testing import open_test_node
from tests.helpers.services import echo_service

# Every test's node has a console on a free port that greets at once.
CONSOLE = {"port": 0, "greeting_delay": 0}
pytestmark = pytest.mark.skypy_config(console=CONSOLE)


class ConsoleClient:
    """One TCP connection to the console, read line by line."""

    def __init__(self, stream):
        self.stream = stream
        self.buffer = b""

    async def line(self, timeout=10):
        with trio.fail_after(timeout):
            while b"\n" not in self.buffer:
                chunk = await self.stream.receive_some()
                assert chunk, f"the console closed the connection; unread: {self.buffer!r}"
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    async def ask(self, command):
        """The answer's lines, up to and including <CMD OK> or <CMD Error>."""
        await self.stream.send_all(command.encode() + b"\n")
        lines = []
        while not lines or lines[-1] not in ("<CMD OK>", "<CMD Error>"):
            lines.append(await self.line())
        return lines


def console_port():
    [listener] = [s for s in socket.info() if s["kind"] == "listen"]
    return listener["address"][1]


async def connect(port):
    client = ConsoleClient(await trio.open_tcp_stream("127.0.0.1", port))
    assert await client.line() == "Welcome to skynet console"
    return client


@pytest.fixture
async def console(node):
    """A client connected to the node's console."""
    client = await connect(console_port())
    yield client
    await client.stream.aclose()


def table(lines):
    """An answer's key<TAB>value lines as a dict, checking they come sorted and end with <CMD OK>."""
    assert lines[-1] == "<CMD OK>", lines
    pairs = [line.split("\t", 1) for line in lines[:-1]]
    assert [k for k, _ in pairs] == sorted(k for k, _ in pairs)
    return dict(pairs)


async def test_the_console_logs_the_real_port_it_listens_on(node, logs):
    addr = await skypy.newservice("debug_console", "127.0.0.1", 0, 0)
    [line] = [text for source, text in logs if source == addr and text.startswith("Start debug console at")]
    host, port = re.fullmatch(r"Start debug console at (.+):(\d+)", line).groups()
    assert host == "127.0.0.1" and int(port) != 0
    await connect(int(port))


async def test_help_lists_every_command(console):
    commands = table(await console.ask("help"))
    assert set(commands) == set(
        "help list stat mem gc info task exit kill start call ping inject netstat signal "
        "logon logoff getenv setenv clearcache reload restart trace".split()
    )


async def test_list_shows_each_service_with_its_launch_args(console):
    addr = await skypy.newservice(echo_service)
    services = table(await console.ask("list"))
    assert services[skypy.address(addr)] == "echo_service"
    assert services[skypy.address(skypy.localname(".logger"))] == "logger"
    assert "debug_console 127.0.0.1 0 0" in services.values()


async def test_stat_shows_cpu_message_mqlen_task_for_each_service(console):
    addr = await skypy.newservice(echo_service)
    stats = table(await console.ask("stat"))
    assert skypy.address(addr) in stats and skypy.address(skypy.self()) in stats
    assert re.fullmatch(r"cpu:[0-9.e-]+\tmessage:\d+\tmqlen:0\ttask:0", stats[skypy.address(addr)])


async def test_stat_prints_timeout_for_a_service_silent_for_3_seconds(console, autojump_clock):
    async def busy():
        async def hold(session, source):
            await trio.sleep_forever()  # not a skypy primitive: holds the service's turn

        skypy.dispatch("lua", hold)
        skypy.send(skypy.self(), "lua")

    addr = await skypy.newservice(busy)
    started = trio.current_time()
    stats = table(await console.ask("stat"))
    assert stats[skypy.address(addr)] == "TIMEOUT"
    assert stats[skypy.address(skypy.self())].startswith("cpu:")
    assert 3 <= trio.current_time() - started < 4


async def test_mem_shows_kilobytes_and_what_each_service_is(console):
    addr = await skypy.newservice(echo_service)
    assert re.fullmatch(r"\d+\.\d\d Kb \(echo_service\)", table(await console.ask("mem"))[skypy.address(addr)])


async def test_gc_collects_garbage_then_shows_mem(console):
    answer = table(await console.ask("gc"))
    assert answer.keys() == table(await console.ask("list")).keys()
    assert all(re.fullmatch(r"\d+\.\d\d Kb \(.+\)", v) for v in answer.values())


async def test_info_shows_what_the_info_func_returns(console):
    async def service():
        skypy.info_func(lambda *args: f"info for {' '.join(args)}")

    addr = await skypy.newservice(service)
    assert await console.ask(f"info {skypy.address(addr)} a b") == ["info for a b", "<CMD OK>"]


async def test_task_shows_each_suspended_coroutine_with_its_stack(console):
    async def service():
        async def napping_handler(session, source):
            await skypy.sleep(100)

        skypy.dispatch("lua", napping_handler)
        skypy.send(skypy.self(), "lua")

    addr = await skypy.newservice(service)
    lines = await console.ask(f"task {skypy.address(addr)}")
    assert lines[0].startswith("session ") and "\t" in lines[0]
    assert "napping_handler" in "\n".join(lines) and lines[-1] == "<CMD OK>"


async def test_exit_asks_the_service_to_exit(console):
    addr = await skypy.newservice(echo_service)
    assert await console.ask(f"exit {skypy.address(addr)}") == ["<CMD OK>"]
    await trio.testing.wait_all_tasks_blocked()
    assert skypy.address(addr) not in table(await console.ask("list"))


async def test_kill_ends_the_service_and_names_it(console):
    addr = await skypy.newservice(echo_service)
    assert table(await console.ask(f"kill {addr:x}")) == {skypy.address(addr): "echo_service"}
    with pytest.raises(skypy.CallError):
        await skypy.call(addr, "lua")


async def test_start_launches_a_service_with_string_args(console, tmp_path):
    (tmp_path / "greeter.py").write_text(
        "import skypy\n"
        "async def main(greeting, who):\n"
        "    skypy.register('.greeter')\n"
        "    skypy.dispatch('lua', lambda s, src: skypy.ret(f'{greeting}, {who}'))\n"
    )
    answer = table(await console.ask("start greeter hello world"))
    assert answer == {skypy.address(skypy.localname(".greeter")): "greeter hello world"}
    assert await skypy.call(".greeter", "lua") == "hello, world"


async def test_call_sends_python_literals_and_shows_the_answer(console):
    addr = await skypy.newservice(echo_service)
    assert await console.ask(f"call {skypy.address(addr)} 'get', 1, [2, 3]") == ["('get', 1, [2, 3])", "<CMD OK>"]
    assert (await console.ask(f"call {skypy.address(addr)} not python"))[-1] == "<CMD Error>"


async def test_ping_shows_the_round_trip_in_seconds(console):
    lines = await console.ask("ping .logger")
    assert re.fullmatch(r"\d+\.\d{6}", lines[0]) and lines[1:] == ["<CMD OK>"]


async def test_inject_runs_a_file_in_the_service_module_and_shows_its_prints(console, tmp_path):
    (tmp_path / "holder.py").write_text(
        "import skypy\n"
        "secret = 42\n"
        "async def main():\n"
        "    skypy.dispatch('lua', lambda s, src: skypy.ret(secret))\n"
    )
    (tmp_path / "patch.py").write_text("print('secret was', secret)\nsecret = 43\n")
    addr = await skypy.newservice("holder")
    assert await console.ask(f"inject {skypy.address(addr)} {tmp_path / 'patch.py'}") == ["secret was 42", "<CMD OK>"]
    assert await skypy.call(addr, "lua") == 43


async def test_inject_of_code_that_raises_is_an_error_with_its_traceback(console, tmp_path):
    (tmp_path / "bad.py").write_text("1 / 0\n")
    lines = await console.ask(f"inject .logger {tmp_path / 'bad.py'}")
    assert lines[-1] == "<CMD Error>" and "ZeroDivisionError" in lines[-2]


async def test_netstat_shows_each_socket_with_its_owner(console):
    sockets = table(await console.ask("netstat"))
    kinds = {re.search(r"kind:(\w+)", row).group(1) for row in sockets.values()}
    assert kinds == {"listen", "tcp"}
    assert all(re.search(r"owner::[0-9a-f]{8}\b", row) for row in sockets.values())


async def test_netstat_shows_where_a_forwarded_connection_sends_its_packets(console):
    accepted = trio.Event()
    ids = []

    def on_accept(id, address):
        ids.append(id)
        accepted.set()

    listen_id, host, port = await socket.listen("127.0.0.1", 0)
    await socket.start(listen_id, on_accept)
    async with await trio.open_tcp_stream(host, port):
        with trio.fail_after(10):
            await accepted.wait()
        [id] = ids
        await socket.start(id)
        socket.forward(id, skypy.self(), 0, "client", id)
        row = table(await console.ask("netstat"))[str(id)]
        assert f"forwarded_to:{skypy.address(skypy.self())}" in row


async def spinner():
    """A service whose handler never ends by itself."""

    def spin(session, source):
        while True:
            pass

    skypy.dispatch("lua", spin)


# Were the signal lost, the watchdog's own interrupt would end the handler
# after 10 s: a handler held under 5 s was interrupted because it was signalled.
@pytest.mark.skypy_config(console=CONSOLE, watchdog={"endless": 0.2, "interrupt": 10})
async def test_signal_interrupts_the_next_handler_of_the_service_reported_stuck(node, console):
    addr = await skypy.newservice(spinner)
    lines = await console.ask(f"signal {skypy.address(addr)}")
    assert lines[-1] == "<CMD OK>" and "interrupted" in lines[0]
    with pytest.raises(skypy.CallError, match=r"interrupted after [0-4]\.\d s"):
        await skypy.call(addr, "lua")
    assert isinstance(node.crashes.pop().exception, skypy.Interrupted)


async def test_logon_writes_each_received_message_to_logpath_until_logoff(console, tmp_path):
    addr = await skypy.newservice(echo_service)
    path = tmp_path / f"{addr:08x}.log"
    assert await console.ask(f"logon {skypy.address(addr)}") == [str(path), "<CMD OK>"]
    assert await skypy.call(addr, "lua", "hello") == "hello"
    assert await console.ask(f"logoff {skypy.address(addr)}") == ["<CMD OK>"]
    await skypy.call(addr, "lua", "unlogged")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("open time: ") and lines[-1].startswith("close time: ")
    [message] = [line for line in lines if "hello" in line]
    assert re.fullmatch(rf"{skypy.address(skypy.self())} 10 \d+ \d+\.\d\d \('hello',\)", message)
    assert "unlogged" not in path.read_text()


async def test_getenv_and_setenv(console):
    assert await console.ask("setenv colour blue") == ["<CMD OK>"]
    assert await console.ask("getenv colour") == ["blue", "<CMD OK>"]
    assert (await console.ask("setenv colour red"))[-1] == "<CMD Error>"
    assert (await console.ask("getenv nothing"))[-1] == "<CMD Error>"


async def test_clearcache_makes_the_next_launch_read_the_file_again(console, tmp_path):
    source = tmp_path / "versioned.py"
    source.write_text("import skypy\nasync def main():\n    skypy.dispatch('lua', lambda s, src: skypy.ret(1))\n")
    assert await skypy.call(await skypy.newservice("versioned"), "lua") == 1
    source.write_text("import skypy\nasync def main():\n    skypy.dispatch('lua', lambda s, src: skypy.ret(2))\n")
    assert await console.ask("clearcache") == ["<CMD OK>"]
    assert await skypy.call(await skypy.newservice("versioned"), "lua") == 2


async def test_reload_runs_the_service_file_again_at_the_same_address(console, tmp_path):
    source = tmp_path / "versioned.py"
    source.write_text("import skypy\nasync def main():\n    skypy.dispatch('lua', lambda s, src: skypy.ret(1))\n")
    addr = await skypy.newservice("versioned")
    source.write_text("import skypy\nasync def main():\n    skypy.dispatch('lua', lambda s, src: skypy.ret(2))\n")
    assert (await console.ask(f"reload {skypy.address(addr)}"))[-1] == "<CMD OK>"
    assert await skypy.call(addr, "lua") == 2


async def test_a_failing_reload_shows_why(console, tmp_path):
    source = tmp_path / "versioned.py"
    source.write_text("import skypy\nasync def main():\n    skypy.dispatch('lua', lambda s, src: skypy.ret(1))\n")
    addr = await skypy.newservice("versioned")
    source.write_text("def broken(:\n")
    lines = await console.ask(f"reload {skypy.address(addr)}")
    assert lines[-1] == "<CMD Error>" and "SyntaxError" in lines[0]
    assert await skypy.call(addr, "lua") == 1


async def test_an_unknown_command_is_invalid(console):
    assert await console.ask("frobnicate") == ["Invalid command, type help for command list", "<CMD Error>"]


@pytest.mark.parametrize("command", ["task :00ffffff", "ping .nobody", "info zz", "kill", "exit 1 2"])
async def test_a_bad_or_dead_address_is_an_error_never_a_hang(console, command):
    lines = await console.ask(command)
    assert len(lines) == 2 and lines[-1] == "<CMD Error>"


# An HTTP client speaks first, before the console would greet it.
SLOW_GREETING = pytest.mark.skypy_config(console={**CONSOLE, "greeting_delay": 60})


@SLOW_GREETING
async def test_http_get_runs_the_command_answers_http_1_1_and_closes(node):
    url = f"http://127.0.0.1:{console_port()}/ping/.logger"
    with await trio.to_thread.run_sync(functools.partial(urllib.request.urlopen, url, timeout=10)) as response:
        assert response.status == 200 and response.version == 11
        body = await trio.to_thread.run_sync(response.read)
    assert re.fullmatch(r"\d+\.\d{6}\n<CMD OK>\n", body.decode())


@SLOW_GREETING
async def test_http_answer_ends_with_the_server_closing_the_connection(node):
    stream = await trio.open_tcp_stream("127.0.0.1", console_port())
    await stream.send_all(b"GET /stat HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    received = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some():  # until the server closes
            received += chunk
    head, body = received.decode().split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 200 OK\r\n") and f"Content-Length: {len(body)}" in head
    assert body.endswith("<CMD OK>\n") and "Welcome" not in received.decode()


async def test_a_console_port_already_taken_stops_start_up_as_any_busy_port_does():
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        where = f"127.0.0.1:{port}"
        with pytest.raises(skypy.StartError, match=rf"^debug console on {where} failed: SocketError: listen on {where}"):
            async with open_test_node(console={"port": port}):
                pass


@pytest.mark.skypy_config(console=CONSOLE, watchdog={"endless": 0.2, "interrupt": 0.3})
async def test_stat_shows_a_service_reported_in_an_endless_loop(node, console):
    addr = await skypy.newservice(spinner)
    with pytest.raises(skypy.CallError):
        await skypy.call(addr, "lua")
    assert isinstance(node.crashes.pop().exception, skypy.Interrupted)
    assert table(await console.ask("stat"))[skypy.address(addr)].endswith("\tendless:true\tmessage:2\tmqlen:0\ttask:0")


@pytest.mark.skypy_config(console={**CONSOLE, "greeting_delay": 5})
async def test_a_new_connection_is_greeted_after_greeting_delay_seconds_of_silence(node, autojump_clock):
    start = trio.current_time()
    client = ConsoleClient(await trio.open_tcp_stream("127.0.0.1", console_port()))
    assert await client.line() == "Welcome to skynet console"
    assert trio.current_time() - start >= 5
    await client.stream.aclose()


async def test_an_unknown_name_says_no_service_has_it(console):
    assert await console.ask("info .nope") == [
        "Not a valid name: no service is named .nope (list shows every service)", "<CMD Error>"
    ]


async def test_getenv_without_a_key_shows_how_to_use_it(console):
    assert await console.ask("getenv") == ["Wrong arguments; getenv key", "<CMD Error>"]


@SLOW_GREETING
async def test_http_get_of_the_root_answers_the_command_list(node):
    url = f"http://127.0.0.1:{console_port()}/"
    with await trio.to_thread.run_sync(functools.partial(urllib.request.urlopen, url, timeout=10)) as response:
        body = (await trio.to_thread.run_sync(response.read)).decode()
    assert body.startswith("call\t") and "stat\tDump all stats\n" in body and body.endswith("<CMD OK>\n")


async def test_stat_does_not_count_the_answers_it_waits_for_as_the_consoles_backlog(console):
    for _ in range(5):
        await skypy.newservice(echo_service)
    [me] = [addr for addr, what in table(await console.ask("list")).items() if what.startswith("debug_console")]
    assert "\tmqlen:0\t" in table(await console.ask("stat"))[me]


async def test_start_passes_an_address_a_service_can_use(node, console, tmp_path):
    (tmp_path / "caller.py").write_text(
        "import skypy\nasync def main(target):\n    skypy.error('answer', await skypy.call(target, 'lua', 'hi'))\n"
    )
    echo = skypy.address(await skypy.newservice(echo_service))
    assert (await console.ask(f"start caller {echo}"))[-1] == "<CMD OK>"
    await node.wait_for_log("answer hi")


async def test_list_indents_a_supervisors_children_under_it(console):
    from skypy import supervisor

    sup = await supervisor.start([supervisor.child(echo_service, name=".e1"), supervisor.child("simpledb")])
    after = await skypy.newservice(echo_service)
    lines = (await console.ask("list"))[:-1]
    at = lines.index(f"{skypy.address(sup)}\tsupervisor one_for_one 3/5s")
    assert lines[at + 1] == f"  {skypy.address(skypy.localname('.e1'))}\techo_service"
    assert lines[at + 2].startswith("  ") and lines[at + 2].endswith("\tsimpledb")
    assert lines[at + 3] == f"{skypy.address(after)}\techo_service"


async def test_restart_restarts_a_supervised_service_under_its_name(console):
    from skypy import supervisor

    await supervisor.start([supervisor.child(echo_service, name=".e1")])
    old = skypy.localname(".e1")
    answer = table(await console.ask("restart .e1"))
    new = skypy.localname(".e1")
    assert new != old and answer == {skypy.address(new): "echo_service"}
    lines = await console.ask(f"restart {skypy.address(skypy.self())}")
    assert lines[-1] == "<CMD Error>" and "is not supervised" in lines[0]


async def test_stat_counts_the_nodes_dead_letters(console):
    addr = await skypy.newservice(echo_service)
    await skypy.kill(addr)
    skypy.send(addr, "lua")
    skypy.send(addr, "lua")
    stats = table(await console.ask("stat"))
    assert stats["node"] == "deadletters:2"
