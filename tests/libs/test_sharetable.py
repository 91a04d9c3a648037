"""skypy.sharetable: one frozen table shared by reference, each handler reading one version start to end."""

import copy
import json
import pickle
import tracemalloc

import pytest
import trio

import skypy
from skypy import sharetable
from skypy.testing import wait_until


async def test_a_view_reads_the_loaded_tree_and_refuses_changes_at_any_depth(node):
    sharetable.load("items", {"sword": {"damage": [3, 5]}, "names": ["a", "b"]})
    items = sharetable.query("items")
    assert items["sword"]["damage"] == (3, 5)
    assert sorted(items) == ["names", "sword"] and len(items) == 2 and "sword" in items
    assert items == {"sword": {"damage": (3, 5)}, "names": ("a", "b")}
    with pytest.raises(TypeError):
        items["sword"] = 1
    with pytest.raises(TypeError):
        items["sword"]["damage"] = 1
    with pytest.raises(TypeError):
        items["names"][0] = "z"
    with pytest.raises(TypeError):
        items["sword"].update(damage=9)
    with pytest.raises(TypeError):
        items["names"].append("c")
    assert items["sword"] == {"damage": (3, 5)}


async def test_a_shared_value_packs_for_the_cluster_and_is_not_copied_for_copy_messages(node):
    sharetable.load("items", {"sword": {"damage": [3, 5]}})
    sword = sharetable.query("items")["sword"]
    assert skypy.unpack(skypy.pack(sword)) == ({"damage": [3, 5]},)
    assert copy.deepcopy(sword) is sword
    assert pickle.loads(pickle.dumps(sword)) == sword


async def test_every_holder_reads_the_same_object_no_copy(node):
    sharetable.load("items", {"sword": {"damage": 3}})
    seen = []

    async def holder():
        seen.append(sharetable.query("items")["sword"])

    for _ in range(3):
        await skypy.newservice(holder)
    assert all(s is seen[0] for s in seen)


@pytest.mark.parametrize(
    "name, text",
    [("t.toml", '[sword]\ndamage = 3\n'), ("t.json", json.dumps({"sword": {"damage": 3}})), ("t.py", "{'sword': {'damage': 3}}")],
)
async def test_load_reads_toml_json_or_a_python_literal_file(node, tmp_path, name, text):
    (tmp_path / name).write_text(text)
    sharetable.load("items", str(tmp_path / name))
    assert sharetable.query("items")["sword"]["damage"] == 3


async def test_update_bumps_the_version_and_new_handlers_read_the_new_tree(node):
    sharetable.load("conf", {"v": 1})
    conf = sharetable.query("conf")
    addr = await skypy.newservice(_reader, conf)
    assert await skypy.call(addr, "lua") == 1
    sharetable.update("conf", {"v": 2})
    assert sharetable.version("conf") == 2
    assert await skypy.call(addr, "lua") == 2


async def _reader(conf):
    async def read(session, source):
        skypy.ret(conf["v"])

    skypy.dispatch("lua", read)


async def test_query_or_update_of_an_unknown_name_raises_key_error_naming_it(node):
    with pytest.raises(KeyError, match="nosuch"):
        sharetable.query("nosuch")
    with pytest.raises(KeyError, match="nosuch"):
        sharetable.update("nosuch", {})


UPDATES = 1000


async def test_a_handler_reading_across_suspensions_never_sees_two_versions(node):
    sharetable.load("t", {"a": 0, "b": 0, "c": 0})
    mixed = []

    async def updater_service():
        def bump(session, source):
            v = sharetable.version("t")
            sharetable.update("t", {"a": v, "b": v, "c": v})
            skypy.ret(v)

        skypy.dispatch("lua", bump)

    updater = await skypy.newservice(updater_service)

    async def reader_service():
        table = sharetable.query("t")

        async def read(session, source):
            a = table["a"]
            await skypy.call(updater, "lua")  # the table is updated right here
            b = table["b"]
            await skypy.sleep(0)
            c = table["c"]
            if not a == b == c:
                mixed.append((a, b, c))
            skypy.ret(a)

        skypy.dispatch("lua", read)

    readers = [await skypy.newservice(reader_service) for _ in range(5)]

    async def caller(addr):
        while sharetable.version("t") < UPDATES:
            await skypy.call(addr, "lua")

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for addr in readers:
                nursery.start_soon(node.newservice, lambda addr=addr: caller(addr))
    assert sharetable.version("t") >= UPDATES
    assert mixed == []


async def test_watch_runs_in_the_watching_service_after_an_update(node):
    sharetable.load("conf", {"v": 1})
    got = []
    done = trio.Event()

    async def watcher():
        def changed(view):
            got.append((skypy.self(), view["v"]))
            done.set()

        sharetable.watch("conf", changed)

    addr = await skypy.newservice(watcher)
    sharetable.update("conf", {"v": 2})
    with trio.fail_after(5):
        await done.wait()
    assert got == [(addr, 2)]


HOLDERS = 1000
ROWS = 45_000  # ~10.2 MB frozen: rows of a 200-byte string and a small dict


async def test_a_thousand_holders_of_a_10_mb_table_cost_one_table(node):
    async def holder():
        table = None

        async def read(session, source, key):
            nonlocal table
            if key is not None:
                table = table or sharetable.query("big")  # held from here on
                key = table[key]["n"]
            skypy.ret(key)

        skypy.dispatch("lua", read)

    holders = [await skypy.newservice(holder) for _ in range(HOLDERS)]
    tree = {f"row{n}": {"n": n, "text": f"{n:0200d}"} for n in range(ROWS)}
    tracemalloc.start()
    try:
        # A call that holds nothing first, traced: what every call allocates
        # and keeps until the next (a parked worker's state) is then counted
        # in the baseline, not as the cost of holding.
        for addr in holders:
            await skypy.call(addr, "lua", None)
        baseline, _ = tracemalloc.get_traced_memory()
        sharetable.load("big", tree)
        one_table = tracemalloc.get_traced_memory()[0] - baseline
        for n, addr in enumerate(holders):
            assert await skypy.call(addr, "lua", f"row{n}") == n
        held = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert one_table > 10_000_000
    assert held <= 1.2 * one_table, f"{HOLDERS} holders of {one_table} bytes cost {held - one_table} more"


async def test_an_old_version_is_freed_once_no_running_handler_reads_it(node):
    async def holder():
        table = sharetable.query("big")

        async def read(session, source):
            await skypy.sleep(0)  # a coroutine handler: it pins the version it reads
            skypy.ret(len(table))

        skypy.dispatch("lua", read)

    sharetable.load("big", {"small": 1})
    addr = await skypy.newservice(holder)
    tracemalloc.start()
    try:
        sharetable.update("big", {f"row{n}": f"{n:0200d}" for n in range(10_000)})
        assert await skypy.call(addr, "lua") == 10_000
        holding, _ = tracemalloc.get_traced_memory()
        sharetable.update("big", {"small": 2})
        freed, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert holding > 2_000_000 and freed < holding / 10


async def test_watching_goes_on_when_the_waking_service_is_killed(node):
    sharetable.load("conf", {"v": 1})
    got = []

    async def watcher():
        sharetable.watch("conf", lambda view: got.append(view["v"]))

    await skypy.newservice(watcher)
    waker = await skypy.queryservice("sharetable")
    await skypy.kill(waker)
    sharetable.update("conf", {"v": 2})
    await wait_until(lambda: got == [2], timeout=5)
