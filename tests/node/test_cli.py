"""The `skypy` command as a user runs it: a real process, real signals."""

import re
import signal
import subprocess

import pytest
import trio

import skypy
from skypy.testing import NodeProcess
from skypy.testing.process import SKYPY

start = NodeProcess.start


async def test_run_runs_the_default_config_until_ctrl_c(default_config, tmp_path):
    node = await start("run", str(default_config), cwd=tmp_path)
    try:
        await node.wait_for("LAUNCH simpledb")
        await node.wait_for("node ready")
    finally:
        status = await node.stop(signal.SIGINT)
    assert status == 0


async def test_sigterm_stops_the_node_cleanly(default_config, tmp_path):
    node = await start("run", str(default_config), cwd=tmp_path)
    await node.wait_for("node ready")
    assert await node.stop(signal.SIGTERM) == 0


async def test_a_crashing_service_is_logged_and_the_node_keeps_running(tmp_path):
    (tmp_path / "crashy.py").write_text(
        "import skypy\n"
        "async def main():\n"
        "    def boom(session, source):\n"
        "        raise KeyError('missing')\n"
        "    skypy.dispatch('lua', boom)\n"
        "    skypy.send(skypy.self(), 'lua')\n"
        "    skypy.timeout(0.01, lambda: skypy.error('still alive'))\n"
    )
    (tmp_path / "node.toml").write_text('start = "crashy"\nservice_path = ["."]\n')
    node = await start("run", "node.toml", cwd=tmp_path)
    try:
        crash = await node.wait_for("raised")
        address = crash.split("]")[0].lstrip("[")
        await node.wait_for("KeyError: 'missing'")
        assert (await node.wait_for("still alive")).startswith(f"[{address}]")
    finally:
        assert await node.stop() == 0


@pytest.mark.parametrize(
    "text, reason",
    [
        ('strat = "main"\n', "unknown key 'strat'"),
        ('harbor = "x"\n', "key 'harbor' must be an integer"),
        ('start = "absent"\n', "key 'start': no service 'absent'"),
        ("start = \n", "bad TOML"),
        ('node = "db"\n[cluster]\nother = "127.0.0.1:2528"\n', "key 'node': 'db' has no address in [cluster]"),
        ('nodes = ["a", "b"]\n[cluster]\na = "127.0.0.1:1"\nb = false\n', "key 'nodes': 'b' has no address"),
        ('[cluster]\ndb = "127.0.0.1"\n', "key 'cluster' must be a table of node = \"host:port\""),
        ('logger = "/nonexistent/dir/x.log"\n', "key 'logger': no folder /nonexistent/dir to write x.log in"),
        ("gate_port = 8888\n", "unknown key 'gate_port' (known keys: cluster, console, "),
        ("daemon = true\n", "key 'daemon' is skynet's, not skypy's: skypy runs in the foreground"),
    ],
)
def test_bad_config_stops_with_one_line_and_status_2(tmp_path, text, reason):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = subprocess.run([SKYPY, "run", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0]


def test_an_unknown_key_points_to_env(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("gate_port = 8888\n")
    result = subprocess.run([SKYPY, "run", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.rstrip().endswith("put it under [env], where getenv reads it")


def test_a_bad_set_is_a_config_error(tmp_path):
    result = subprocess.run([SKYPY, "run", "--set", "console.colour=1"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("skypy: --set: unknown key 'console.colour' (known keys: ")


def test_version_and_help():
    version = subprocess.run([SKYPY, "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and version.stdout.strip() == f"skypy {skypy.__version__}"
    helptext = subprocess.run([SKYPY, "--help"], capture_output=True, text=True, timeout=30)
    assert helptext.returncode == 0 and "run" in helptext.stdout


async def test_file_logger_stamps_lines_and_reopens_on_sighup(tmp_path):
    (tmp_path / "node.toml").write_text(
        'start = "main"\nlogger = "node.log"\n[env]\nchat_address = "127.0.0.1"\nchat_port = 0\n'
    )
    node = await start("run", "node.toml", cwd=tmp_path)
    log = tmp_path / "node.log"
    try:
        await wait_for_text(log, "node ready")
        assert_stamped(log.read_text().splitlines()[0])
        log.rename(tmp_path / "node.log.1")
        node.process.send_signal(signal.SIGHUP)
        await wait_for_text(log, "reopened")
    finally:
        assert await node.stop() == 0
    assert_stamped(log.read_text().splitlines()[0])


async def wait_for_text(path, text, timeout=20):
    """Until the file `path`, which another process writes, contains `text`."""
    with trio.fail_after(timeout):
        while not path.exists() or text not in path.read_text():
            await trio.sleep(0.05)  # nothing tells this process of a write: poll


def assert_stamped(line: str) -> None:
    assert re.fullmatch(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d\.\d\d \[:[0-9a-f]{8}\] .*", line), line
