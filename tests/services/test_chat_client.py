"""examples/chat_client.py driven as a person would: lines typed in, lines read off the screen."""

import functools
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import skypy
from skypy import netpack, supervisor
from skypy.testing import NodeProcess
from tests.helpers.chat import Lobby, next_of

CLIENT = Path(__file__).parents[2] / "examples" / "chat_client.py"


class Terminal:
    """The chat client in a child process: what is typed on stdin, what it prints on stdout."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.pending = b""

    async def type(self, line: str) -> None:
        await self.process.stdin.send_all(line.encode() + b"\n")

    async def read_line(self, timeout: float = 10) -> str:
        with trio.fail_after(timeout):
            while b"\n" not in self.pending:
                chunk = await self.process.stdout.receive_some()
                assert chunk, f"the client exited; it printed {self.pending!r}"
                self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode()

    async def exit_status(self, timeout: float = 10) -> int:
        with trio.fail_after(timeout):
            return await self.process.wait()


@pytest.fixture
async def run_client():
    """Start a chat client; any still running after the test is killed."""
    processes = []

    async def run(port, name):
        process = await trio.lowlevel.open_process(
            [sys.executable, str(CLIENT), name, "--port", str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        processes.append(process)
        return Terminal(process)

    yield run
    for process in processes:
        process.kill()
        await process.wait()
        await process.stdin.aclose()
        await process.stdout.aclose()
        await process.stderr.aclose()


async def test_a_person_logs_in_hears_others_talks_lists_and_quits(lobby, run_client):
    alice = await run_client(lobby.port, "alice")
    assert await alice.read_line() == "* alice joined"
    assert (await alice.read_line()).startswith("* type to talk")
    bob = await lobby.login("bob")
    assert await alice.read_line() == "* bob joined"
    await bob.send_packet("say hi alice")
    assert await alice.read_line() == "<bob> hi alice"
    assert await next_of(bob, "said") == "said bob hi alice"
    await alice.type("hello bob, nice day")
    assert await next_of(bob, "said") == "said alice hello bob, nice day"
    assert await alice.read_line() == "<alice> hello bob, nice day"
    await alice.type("/who")
    assert await alice.read_line() == "* in the lobby: alice, bob"
    await alice.type("/quit")
    assert await alice.read_line() == "* bye"
    assert await alice.exit_status() == 0
    assert await next_of(bob, "left") == "left alice"


async def test_end_of_input_leaves_the_lobby(lobby, run_client):
    bob = await lobby.login("bob")
    alice = await run_client(lobby.port, "alice")
    assert await next_of(bob, "joined") == "joined alice"
    await alice.process.stdin.aclose()  # Ctrl-D
    assert await next_of(bob, "left") == "left alice"
    assert await alice.exit_status() == 0


async def test_ctrl_c_leaves_the_lobby_quietly(lobby, run_client):
    bob = await lobby.login("bob")
    alice = await run_client(lobby.port, "alice")
    assert await alice.read_line() == "* alice joined"
    assert (await alice.read_line()).startswith("* type to talk")
    alice.process.send_signal(signal.SIGINT)
    assert await next_of(bob, "left") == "left alice"
    assert await alice.read_line() == "* bye"
    assert await alice.exit_status() == 0
    assert await alice.process.stderr.receive_some() == b""  # no traceback


async def test_the_client_says_when_the_server_closed_the_connection(run_client):
    async def lobby_that_closes(stream):
        await stream.receive_some()  # the login
        await stream.send_all(netpack.pack(b"joined alice"))
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(functools.partial(trio.serve_tcp, lobby_that_closes, 0, host="127.0.0.1"))
        alice = await run_client(listener.socket.getsockname()[1], "alice")
        assert await alice.read_line() == "* alice joined"
        assert (await alice.read_line()).startswith("* type to talk")
        assert (await alice.read_line()).endswith("closed the connection")
        assert await alice.exit_status() == 1
        nursery.cancel_scope.cancel()


async def test_a_taken_name_is_shown_and_the_client_exits_with_status_1(lobby, run_client):
    bob = await lobby.login("bob")  # noqa: F841 (held)
    other = await run_client(lobby.port, "bob")
    assert await other.read_line() == "! name taken"
    assert await other.exit_status() == 1


async def test_skypy_run_serves_the_chat_lobby_of_the_default_config(default_config, tmp_path, run_client):
    node = await NodeProcess.start("run", str(default_config), cwd=tmp_path)
    try:
        port = int((await node.wait_for("Listen on 127.0.0.1:")).rsplit(":", 1)[1])
        alice = await run_client(port, "alice")
        assert await alice.read_line() == "* alice joined"
        await alice.type("/quit")
        assert await alice.exit_status() == 0
    finally:
        assert await node.stop() == 0


async def test_a_person_in_a_supervised_lobby_that_restarts_is_logged_in_again(node, run_client):
    await supervisor.start([supervisor.child("lobby", name=".lobby")])
    lobby = await Lobby.start(node)
    alice = await run_client(lobby.port, "alice")
    assert await alice.read_line() == "* alice joined"
    assert (await alice.read_line()).startswith("* type to talk")
    await skypy.kill(".lobby")
    assert await alice.read_line() == "! lobby restarted"
    # Its login may meet the new lobby still starting, and be told again (and log in again).
    line = await alice.read_line()
    while line == "! lobby restarted":
        line = await alice.read_line()
    assert line == "* alice joined"
