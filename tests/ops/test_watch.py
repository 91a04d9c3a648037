"""Reloading services as their files change (`skypy run --watch`), on the real file system."""

import pytest

import skypy
from skypy.ops.watch import watcher
from skypy.testing import NodeProcess, wait_until

pytest.importorskip("watchfiles")

SERVICE = "import skypy\nasync def main():\n    skypy.dispatch('lua', lambda s, src: skypy.ret({version}))\n"


async def test_a_changed_file_reloads_every_service_running_it(node, tmp_path):
    (tmp_path / "versioned.py").write_text(SERVICE.format(version=1))
    first = await skypy.newservice("versioned")
    second = await skypy.newservice("versioned")
    await skypy.newservice(watcher, str(tmp_path))
    await node.wait_for_log("watch: reloading services", timeout=5)
    (tmp_path / "versioned.py").write_text(SERVICE.format(version=2))

    async def both_reloaded():
        return [await skypy.call(first, "lua"), await skypy.call(second, "lua")] == [2, 2]

    await wait_until(both_reloaded, timeout=10)


async def test_a_broken_save_leaves_the_old_code_serving_and_says_why(node, tmp_path):
    (tmp_path / "versioned.py").write_text(SERVICE.format(version=1))
    addr = await skypy.newservice("versioned")
    await skypy.newservice(watcher, str(tmp_path))
    await node.wait_for_log("watch: reloading services", timeout=5)
    (tmp_path / "versioned.py").write_text("def broken(:\n")
    await node.wait_for_log(f"watch: {skypy.address(addr)} not reloaded", timeout=10)
    assert await skypy.call(addr, "lua") == 1


@pytest.mark.slow
async def test_skypy_run_watch_reloads_the_start_service_when_its_file_changes(tmp_path):
    announcing = "import skypy\nasync def main():\n    skypy.error('versioned {version} up')\n"
    (tmp_path / "versioned.py").write_text(announcing.format(version=1))
    (tmp_path / "node.toml").write_text(f'start = "versioned"\nservice_path = ["{tmp_path}"]\n')
    process = await NodeProcess.start("run", "node.toml", "--watch", cwd=tmp_path)
    try:
        await process.wait_for("versioned 1 up")
        await process.wait_for("watch: reloading services")
        (tmp_path / "versioned.py").write_text(announcing.format(version=2))
        await process.wait_for("versioned 2 up")
    finally:
        assert await process.stop() == 0


@pytest.mark.slow
async def test_skypy_run_watch_reloads_on_every_node_of_a_multi_node_run(tmp_path):
    announcing = "import skypy\nasync def main():\n    skypy.error(f'versioned {version} up on {{skypy.getenv(\"node\")}}')\n"
    (tmp_path / "versioned.py").write_text(announcing.format(version=1))
    (tmp_path / "nodes.toml").write_text(
        f'start = "versioned"\nservice_path = ["{tmp_path}"]\nnodes = ["a", "b"]\n'
        '[cluster]\na = "127.0.0.1:0"\nb = "127.0.0.1:0"\n'
    )
    process = await NodeProcess.start("run", "nodes.toml", "--watch", cwd=tmp_path)
    try:
        for node in ("a", "b"):
            await process.wait_for(f"versioned 1 up on {node}")
            # Each node's watcher (its fourth service, after the logger,
            # clusterd and the start service) must be watching before the edit.
            await process.wait_for(f"{node} [:00000005] watch: reloading services")
        (tmp_path / "versioned.py").write_text(announcing.format(version=2))
        for node in ("a", "b"):
            await process.wait_for(f"versioned 2 up on {node}")
    finally:
        assert await process.stop() == 0
