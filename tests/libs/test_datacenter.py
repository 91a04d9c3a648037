"""skypy.datacenter: a key tree for a node, or for a cluster through the node the config names."""

import pytest
import trio

import skypy
from skypy import datacenter
from skypy._core import config
from skypy.testing import wait_until
from tests.helpers.nodes import NODE_A, node_b


async def test_set_then_get_follows_the_key_path(node):
    datacenter.set("players", 42, {"name": "alice"})
    assert await datacenter.get("players", 42, "name") == "alice"
    assert await datacenter.get("players", 42) == {"name": "alice"}
    assert await datacenter.get("players", 7) is None
    assert await datacenter.get("nothing", "here") is None


async def test_setting_none_removes_the_key(node):
    datacenter.set("a", "b", 1)
    datacenter.set("a", "b", None)
    assert await datacenter.get("a", "b") is None


async def test_every_service_of_the_node_shares_the_tree(node):
    async def setter():
        datacenter.set("from", "setter", True)

    await skypy.newservice(setter)
    assert await datacenter.get("from", "setter") is True


async def test_wait_returns_at_once_for_a_key_already_set(node):
    datacenter.set("k", 1)
    with trio.fail_after(5):
        assert await datacenter.wait("k") == 1


async def test_wait_returns_once_another_service_sets_the_key(node):
    got = []

    async def waiter():
        async def wait_for_it():
            got.append(await datacenter.wait("config", "ready"))

        skypy.fork(wait_for_it)

    await skypy.newservice(waiter)
    await trio.testing.wait_all_tasks_blocked()
    assert got == []
    datacenter.set("config", {"ready": "yes"})  # a parent table set at once counts
    await wait_until(lambda: got, timeout=5)
    assert got == ["yes"]


async def test_a_path_with_no_key_is_refused(node):
    with pytest.raises(ValueError):
        await datacenter.get()


@pytest.mark.skypy_config(**NODE_A, datacenter={"node": "a"})
async def test_a_wait_on_another_node_is_woken_by_a_set_on_the_holding_node(node, tmp_path):
    # Node a holds the tree because its config says so: it serves it from its start.
    woken = trio.Event()
    got = []

    async def waiter():
        got.append(await datacenter.wait("shared", "key"))
        woken.set()

    with trio.fail_after(10):
        async with node_b(node, [tmp_path], datacenter={"node": "a"}) as b:
            await b.newservice(lambda: skypy.fork(waiter))
            await trio.testing.wait_all_tasks_blocked()
            assert got == []
            datacenter.set("shared", "key", "from a")
            await woken.wait()
    assert got == ["from a"]


@pytest.mark.skypy_config(**NODE_A, datacenter={"node": "a"})
async def test_a_set_on_another_node_lands_on_the_holding_node_and_wakes_its_waiters(node, tmp_path):
    got = []

    async def setter():
        datacenter.set("shared", "key", "from b")
        assert await datacenter.get("shared", "key") == "from b"

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery, node_b(node, [tmp_path], datacenter={"node": "a"}) as b:

            async def wait_here():
                got.append(await datacenter.wait("shared", "key"))

            nursery.start_soon(wait_here)
            await trio.testing.wait_all_tasks_blocked()
            await b.newservice(setter)
    assert got == ["from b"]
    assert datacenter.peek("shared", "key") == "from b"


@pytest.mark.skypy_config(**NODE_A, datacenter={"node": "b"})
async def test_a_wait_fails_with_call_error_when_the_holding_node_goes_away(node, tmp_path):
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            failed = []

            async def wait_there():
                with pytest.raises(skypy.CallError):
                    await datacenter.wait("never", "set")
                failed.append(True)

            async with node_b(node, [tmp_path], datacenter={"node": "b"}):
                nursery.start_soon(wait_there)
                await trio.testing.wait_all_tasks_blocked()
    assert failed == [True]


def test_the_config_checks_the_datacenter_table_key_by_key():
    assert config.build("t.toml", {"datacenter": {"node": "db"}}).datacenter == {"node": "db"}
    with pytest.raises(skypy.ConfigError, match="unknown key 'datacenter.nod'"):
        config.build("t.toml", {"datacenter": {"nod": "db"}})
    with pytest.raises(skypy.ConfigError, match="key 'datacenter.node' must be"):
        config.build("t.toml", {"datacenter": {"node": 3}})
