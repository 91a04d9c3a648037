"""Two cluster nodes stopped together with calls in flight between them: exit 0, no traceback."""

import signal
import socket as stdsocket

import pytest

from skypy.testing import NodeProcess

PAIR = """
import skypy
from skypy import cluster


async def main():
    if skypy.getenv("node") == "b":
        said = False

        async def echo(session, source, *args):
            nonlocal said
            if not said:
                said = True
                skypy.error("b serving")
            await skypy.sleep(0.05)
            skypy.ret(*args)

        skypy.dispatch("lua", echo)
        cluster.register("echo")
        return

    async def caller(i):
        while True:
            try:
                await cluster.call("b", "@echo", i)
            except skypy.CallError:
                await skypy.sleep(0.05)  # b not up yet

    for i in range(50):
        skypy.fork(caller, i)
"""


def free_port() -> int:
    with stdsocket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return free.getsockname()[1]


@pytest.mark.slow
async def test_stopping_two_nodes_with_calls_in_flight_exits_0_with_no_traceback(tmp_path):
    (tmp_path / "pair.py").write_text(PAIR)
    (tmp_path / "pair.toml").write_text(
        f'start = "pair"\nservice_path = ["."]\nnodes = ["a", "b"]\n'
        f'[cluster]\na = "127.0.0.1:{free_port()}"\nb = "127.0.0.1:{free_port()}"\n'
    )
    nodes = await NodeProcess.start("run", "pair.toml", cwd=tmp_path)
    await nodes.wait_for("b serving")
    assert await nodes.stop(signal.SIGTERM, timeout=5) == 0
    output = await nodes.output()
    assert not [line for line in output if "Traceback" in line or "raised" in line or "Error" in line], output
