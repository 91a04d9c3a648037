"""Starting `skypy run` as a newcomer does: what a failed start says, `--set`, and what the log tells.

Real processes. Anything that stops start-up ends with one line naming
what failed and why, after the failing service's own traceback, and exit
status 1; config mistakes are status 2 (tests/node/test_cli.py).
"""

import signal
import subprocess
import sys

import pytest
import trio

import skypy
from skypy._core.config import default_config_path
from skypy.testing import NodeProcess

start = NodeProcess.start


def write_service(tmp_path, code: str, config: str = "") -> None:
    (tmp_path / "kvmain.py").write_text(code)
    (tmp_path / "node.toml").write_text(f'start = "kvmain"\nservice_path = ["."]\n{config}')


async def test_a_start_service_that_cannot_listen_ends_with_one_line_and_status_1(tmp_path):
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        write_service(
            tmp_path,
            "import skypy\nfrom skypy import socket\n"
            "async def main():\n    await socket.listen('127.0.0.1', skypy.getenv('kv_port'))\n",
            f"[env]\nkv_port = {port}\n",
        )
        node = await start("run", "node.toml", cwd=tmp_path)
        assert await node.wait() == 1
    lines = await node.output()
    assert lines[-1].startswith(f"skypy: start service 'kvmain' failed: SocketError: listen on 127.0.0.1:{port} failed: ")
    assert sum("Traceback" in line for line in lines) == 1  # the service's own, logged before


@pytest.mark.parametrize(
    "code, reason",
    [
        ("async def main():\n    raise KeyError('kv_port')\n", "KeyError: 'kv_port'"),
        ("async def main(:\n", "SyntaxError: "),
        ("import no_such_module_here\n", "ModuleNotFoundError: No module named 'no_such_module_here'"),
        ("def serve():\n    pass\n", "defines no main"),
    ],
    ids=["raises", "syntax-error", "import-error", "no-main"],
)
def test_a_start_service_that_fails_to_load_or_run_ends_with_one_line_and_status_1(tmp_path, code, reason):
    write_service(tmp_path, code)
    command = [sys.executable, "-m", "skypy", "run", "node.toml"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("skypy: start service 'kvmain' failed: ") and reason in last


async def test_a_busy_console_port_stops_start_up_as_a_busy_service_port_does(tmp_path):
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "node.toml").write_text(f"[console]\nport = {port}\n")
        node = await start("run", "node.toml", cwd=tmp_path)
        assert await node.wait() == 1
    last = (await node.output())[-1]
    assert last.startswith(f"skypy: debug console on 127.0.0.1:{port} failed: SocketError: listen on 127.0.0.1:{port}")


async def test_set_changes_keys_of_a_table_and_keeps_the_others(tmp_path):
    with trio.socket.socket() as taken:  # the file's console port is busy; --set moves it
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        write_service(
            tmp_path,
            "import skypy\nasync def main():\n    skypy.error('kv at', skypy.getenv('kv_host'), skypy.getenv('kv_port'))\n",
            f'[env]\nkv_host = "127.0.0.1"\nkv_port = 7201\n[console]\nport = {taken.getsockname()[1]}\n',
        )
        node = await start("run", "node.toml", "--set", "console.port=0", "--set", "env.kv_port=7001", cwd=tmp_path)
        try:
            await node.wait_for("Start debug console at 127.0.0.1:")
            await node.wait_for("kv at 127.0.0.1 7001")
        finally:
            assert await node.stop() == 0


async def test_a_node_waiting_for_its_peer_says_for_whom(tmp_path):
    (tmp_path / "cluster.toml").write_text(
        default_config_path().with_name("cluster.toml").read_text().replace("2528", "0").replace("2529", "1")
    )
    node = await start("run", "cluster.toml", "--node", "front", cwd=tmp_path)
    try:
        line = await node.wait_for("waiting for node back")
        assert "127.0.0.1:1" in line
    finally:
        assert await node.stop() == 0


async def test_a_config_with_no_start_service_says_nothing_was_started(tmp_path):
    (tmp_path / "empty.toml").write_text("")
    node = await start("run", "empty.toml", cwd=tmp_path)
    try:
        await node.wait_for("nothing was started")
    finally:
        assert await node.stop(signal.SIGTERM) == 0


def test_python_dash_m_skypy_is_the_command():
    result = subprocess.run([sys.executable, "-m", "skypy", "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == f"skypy {skypy.__version__}"
