"""Embedding a node in a trio program with `open_node`.

Nodes are opened through skypy.testing's open_test_node, which is open_node
with a crash check added, except where open_node's own `on_start` or crash
hooks are what is tested.
"""

import gc

import pytest
import trio

import skypy
from skypy.testing import open_test_node
from tests.helpers.services import echo_service


async def test_the_block_is_a_service_that_others_can_call():
    async with open_test_node() as node:
        assert skypy.self() == node.handle
        skypy.dispatch("lua", lambda session, source, x: skypy.ret(x * 2))

        async def caller(target):
            skypy.dispatch("lua", lambda s, src: None)
            skypy.setenv("answer", await skypy.call(target, "lua", 21))

        await skypy.newservice(caller, node.handle)
        assert skypy.getenv("answer") == 42


async def test_node_methods_work_from_tasks_outside_the_block():
    results = []
    async with trio.open_nursery() as outer:
        ready = trio.Event()
        done = trio.Event()
        box = {}

        async def outside():
            await ready.wait()
            node = box["node"]
            addr = await node.newservice(echo_service)
            results.append(await node.call(addr, "lua", "from outside"))
            node.send(addr, "lua", "fire and forget")
            done.set()

        outer.start_soon(outside)
        async with open_test_node() as node:
            box["node"] = node
            ready.set()
            await done.wait()
    assert results == ["from outside"]


async def test_an_error_in_the_block_comes_out_as_itself():
    with pytest.raises(KeyError, match="mine"):
        async with open_test_node():
            raise KeyError("mine")


async def test_open_node_reads_a_config_file_and_starts_its_start_service(tmp_path):
    (tmp_path / "starter.py").write_text(
        "import skypy\nasync def main(label):\n    skypy.register('.started')\n    skypy.setenv('label', label)\n"
    )
    (tmp_path / "node.toml").write_text('start = "starter"\nstart_args = ["x1"]\nservice_path = ["."]\n')
    async with open_test_node(tmp_path / "node.toml") as node:
        assert node.localname(".started") is not None
        assert skypy.getenv("label") == "x1"


async def test_log_hooks_see_every_line_with_its_source():
    async with open_test_node() as node:
        seen = []
        node.add_log_hook(lambda source, text: seen.append((source, text)))
        skypy.error("hello", 42)
        assert seen == [(node.handle, "hello 42")]


async def test_service_api_outside_a_node_says_so():
    with pytest.raises(skypy.SkypyError, match="not inside a skypy service"):
        skypy.self()


async def test_on_start_runs_before_the_first_service_so_its_hooks_see_the_start_up():
    seen = []
    async with skypy.open_node(on_start=lambda node: node.add_log_hook(lambda source, text: seen.append(text))):
        pass
    assert seen[0] == "LAUNCH logger"


async def test_crash_hooks_are_told_of_each_unhandled_exception_with_its_service():
    async with skypy.open_node() as node:
        crashes = []
        node.add_crash_hook(lambda svc, what, exc: crashes.append((svc.handle, what, exc)))

        async def crashy():
            def boom(session, source):
                raise KeyError("missing")

            skypy.dispatch("lua", boom)

        addr = await node.newservice(crashy)
        with pytest.raises(skypy.CallError):
            await node.call(addr, "lua")
        [(handle, what, exc)] = crashes
        assert handle == addr and what == "handler" and isinstance(exc, KeyError)


async def test_the_gc_table_sets_pythons_collector_while_the_node_runs_and_puts_it_back():
    before = gc.get_threshold()
    async with open_test_node(gc={"threshold": 12_345, "freeze": True}):
        assert gc.get_threshold() == (12_345, *before[1:])
        assert gc.get_freeze_count() > 0  # what start-up made
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_without_a_gc_table_a_node_leaves_pythons_collector_alone():
    before = gc.get_threshold()
    async with open_test_node():
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
