"""Stopping `skypy run` as a user does: Ctrl-C, SIGTERM, a closed terminal, a killed parent.

Real processes and real signals. A node stops at any moment, start-up and
a stuck handler included; the children of a multi-node run never outlive
the `skypy` process that started them.
"""

import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest
import trio

from skypy.testing import NodeProcess


@pytest.fixture
async def start(tmp_path):
    """NodeProcess.start, run in tmp_path; whatever a failing test leaves running there (a
    spinning node, a parent, its nodes) is killed afterwards, so it holds no core or port."""
    started: list[NodeProcess] = []

    async def start(*args):
        node = await NodeProcess.start(*args, cwd=tmp_path)
        started.append(node)
        return node

    yield start
    for pid in processes_in(tmp_path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for node in started:
        await node.process.wait()


def processes_in(folder: Path) -> list[int]:
    """The processes whose current folder is `folder`."""
    pids = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        with contextlib.suppress(OSError):
            if cwd.readlink() == folder:
                pids.append(int(cwd.parent.name))
    return pids


WAITS_IN_MAIN = "import skypy\nasync def main():\n    skypy.error('starting')\n    await skypy.wait()\n"
# The logger cannot run while the handler spins: the handler writes to stderr itself.
SPINS = (
    "import os\n"
    "import skypy\n"
    "async def main():\n"
    "    def spin(session, source):\n"
    "        os.write(2, b'spinning\\n')\n"
    "        while True:\n"
    "            pass\n"
    "    skypy.dispatch('lua', spin)\n"
    "    skypy.send(skypy.self(), 'lua')\n"
)


def node_config(tmp_path: Path, service: str, text: str = "") -> None:
    """A config in tmp_path/node.toml that starts `service` (its code) from tmp_path."""
    (tmp_path / "svc.py").write_text(service)
    (tmp_path / "node.toml").write_text(f'start = "svc"\nservice_path = ["."]\n{text}')


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_a_signal_during_start_up_stops_the_node_with_status_0(start, tmp_path, signum):
    node_config(tmp_path, WAITS_IN_MAIN)
    node = await start("run", "node.toml")
    await node.wait_for("starting")
    assert await node.stop(signum, timeout=5) == 0


async def test_a_second_ctrl_c_stops_a_node_stuck_in_a_handler_at_once(start, tmp_path):
    node_config(tmp_path, SPINS)
    # No forced stop of its own before the second Ctrl-C, however slow this machine.
    node = await start("run", "node.toml", "--set", "watchdog.stop=60")
    await node.wait_for("spinning")
    node.process.send_signal(signal.SIGINT)
    await node.wait_for("skypy: SIGINT: stopping (again to stop at once)")
    assert await node.stop(signal.SIGINT, timeout=5) == 128 + signal.SIGINT
    assert "skypy: SIGINT again: stopping at once" in await node.output()


async def test_a_node_stuck_in_a_handler_stops_within_watchdog_stop_of_one_sigterm(start, tmp_path):
    node_config(tmp_path, SPINS)
    node = await start("run", "node.toml", "--set", "watchdog.stop=0.3")
    await node.wait_for("spinning")
    assert await node.stop(signal.SIGTERM, timeout=5) == 128 + signal.SIGTERM
    assert "skypy: the node did not stop within 0.3 s: stopping at once" in await node.output()


STOPS_GRACEFULLY = (
    "import skypy\n"
    "from skypy import supervisor\n"
    "def worker(label):\n"
    "    async def main():\n"
    "        async def stopping():\n"
    "            await skypy.sleep(0.05)  # still a service while it stops\n"
    "            skypy.error(f'{label} stopped')\n"
    "        skypy.on_stop(stopping)\n"
    "    return main\n"
    "async def main():\n"
    "    children = [supervisor.child(worker(label), name=f'.{label}') for label in ('first', 'second')]\n"
    "    await supervisor.start(children)\n"
    "    await skypy.newservice(worker('newest'))\n"
    "    skypy.error('ready')\n"
)


async def started(node: NodeProcess) -> None:
    """Wait until `node` has finished starting: a stop signal then stops it, rather than cancelling
    its start-up. A SIGHUP is handled (the log reopened) only from that moment."""
    await node.wait_for("ready")
    node.process.send_signal(signal.SIGHUP)
    await node.wait_for("SIGHUP: log file reopened")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_a_signal_stops_services_gracefully_newest_first_and_the_log_keeps_it(start, tmp_path, signum):
    node_config(tmp_path, STOPS_GRACEFULLY)
    node = await start("run", "node.toml")
    await started(node)
    assert await node.stop(signum, timeout=10) == 0
    stopped = [line.split("] ", 1)[1] for line in await node.output() if line.endswith(" stopped")]
    assert stopped == ["newest stopped", "second stopped", "first stopped"]


async def test_stop_hooks_over_the_shutdown_timeout_are_cut_short(start, tmp_path):
    node_config(tmp_path, STOPS_GRACEFULLY.replace("0.05", "3600"), "[shutdown]\ntimeout = 0.5\n")
    node = await start("run", "node.toml")
    await started(node)
    assert await node.stop(signal.SIGTERM, timeout=10) == 0
    assert not [line for line in await node.output() if line.endswith(" stopped")]


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now, for a [cluster] table (the nodes listen on them)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


async def run_two_nodes(start, tmp_path: Path, extra: str = "", *options: str) -> NodeProcess:
    """`skypy run` of a config with nodes a and b (and `extra` keys), their start service waiting in main."""
    a, b = free_ports(2)
    node_config(tmp_path, WAITS_IN_MAIN, f'nodes = ["a", "b"]\n{extra}\n[cluster]\na = "127.0.0.1:{a}"\nb = "127.0.0.1:{b}"\n')
    return await start("run", "node.toml", *options)


async def start_two_nodes(start, tmp_path: Path, *options: str) -> NodeProcess:
    """Two nodes, once both have started."""
    parent = await run_two_nodes(start, tmp_path, "", *options)
    for name in "ab":
        await parent.wait_for(f"{name} [:00000004] starting")
    return parent


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (started from any of its threads)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def wait_gone(pids: list[int], timeout: float = 5) -> None:
    with trio.fail_after(timeout):
        while any(map(running, pids)):
            await trio.sleep(0.05)  # nothing tells us when another process's child exits: poll


@pytest.mark.slow
async def test_closing_the_terminal_stops_every_node_of_a_multi_node_run(start, tmp_path):
    parent = await start_two_nodes(start, tmp_path)
    nodes = children_of(parent.process.pid)
    assert len(nodes) == 2
    assert await parent.stop(signal.SIGHUP, timeout=5) == 0
    await wait_gone(nodes)


@pytest.mark.slow
async def test_the_nodes_of_a_multi_node_run_stop_when_its_parent_is_killed(start, tmp_path):
    parent = await start_two_nodes(start, tmp_path)
    nodes = children_of(parent.process.pid)
    assert len(nodes) == 2
    parent.process.kill()
    await parent.wait()
    await wait_gone(nodes)


@pytest.mark.slow
async def test_a_node_that_would_not_stop_is_killed_and_named(start, tmp_path):
    parent = await start_two_nodes(start, tmp_path, "--set", "watchdog.stop=0.2")
    [b] = [pid for pid in children_of(parent.process.pid) if b"--node\0b" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    os.kill(b, signal.SIGSTOP)  # it cannot run, so cannot stop
    assert await parent.stop(signal.SIGINT, timeout=5) == 1
    assert "skypy: node b did not stop within 1.2 s of SIGTERM; killed" in await parent.output()


@pytest.mark.slow
async def test_each_node_of_a_multi_node_config_takes_its_own_table_over_the_shared_keys(start, tmp_path):
    (tmp_path / "who.py").write_text("import skypy\nasync def main():\n    skypy.error('who is', skypy.getenv('who'))\n")
    per_node = '[env]\nwho = "anyone"\n[node.a.console]\nport = 0\n[node.b]\nstart = "who"\n[node.b.env]\nwho = "bee"\n'
    parent = await run_two_nodes(start, tmp_path, per_node)
    try:
        await parent.wait_for("a [:00000003] Start debug console at 127.0.0.1:")
        await parent.wait_for("b [:00000004] who is bee")
    finally:
        assert await parent.stop(signal.SIGINT, timeout=5) == 0
    assert not any(line.startswith("b ") and "debug console" in line for line in parent.lines)
