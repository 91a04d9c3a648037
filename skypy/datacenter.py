"""skypy.datacenter: a tree of values shared by the services of a node, or of a whole cluster.

    datacenter.set("players", 42, {"name": "alice"})       # never blocks
    await datacenter.get("players", 42, "name")           # -> "alice"; None if unset
    await datacenter.wait("config", "ready")              # returns the value once it is set

skynet's datacenter, keys as a path into a tree: ``set(k1, k2, value)``
sets ``tree[k1][k2]``, making the tables between; setting None removes
the key. On one node the tree lives in the node itself, so ``set`` and
``get`` are a few dictionary steps. Cluster-wide, one node holds it: the
config names that node (``[datacenter] node = "db"``), that node runs the
shipped `datacenterd` service (`open`, registered as ``@datacenter``) and
every other node goes there through the cluster; a ``wait`` then fails with
CallError if that node goes away, rather than waiting for ever. Values are
passed as messages are: by reference on one node (do not change them
after ``set``), packed between nodes.
"""

from __future__ import annotations

from typing import Any

from . import cluster
from ._api.lifecycle import uniqueservice
from ._api.messages import call, running, send
from ._core.node import Node

__all__ = ["get", "open", "peek", "set", "wait"]

# Where the tree lives on its node: the node's extension of this name.
EXTENSION = "datacenter"
# The name the holding node's datacenterd is reached by from other nodes.
CLUSTER_NAME = "datacenter"


class _Tree:
    """The node's tree, and the service that answers `wait`s (once one was asked)."""

    def __init__(self) -> None:
        self.root: dict[Any, Any] = {}
        self.waker: int | None = None

    @staticmethod
    def of(node: Node) -> _Tree:
        return node.extension(EXTENSION, _Tree)


def _home() -> str | None:
    """The node holding the tree when it is not this one, else None."""
    node = running().node
    home: str | None = node.config.datacenter.get("node")
    return None if home is None or home == node.config.node else home


def _check_keys(keys: tuple[Any, ...]) -> None:
    if not keys:
        raise ValueError("datacenter: give at least one key")


def set(*keys_and_value: Any) -> None:
    """``set(k1, k2, ..., value)``: set the value at that path; None removes it. Never blocks."""
    *keys, value = keys_and_value
    _check_keys(tuple(keys))
    home = _home()
    if home is not None:
        cluster.send(home, "@" + CLUSTER_NAME, "set", *keys, value)
        return
    tree = _Tree.of(running().node)
    table = tree.root
    for key in keys[:-1]:
        inner = table.get(key)
        if not isinstance(inner, dict):
            if value is None:
                return
            inner = table[key] = {}
        table = inner
    if value is None:
        table.pop(keys[-1], None)
    else:
        table[keys[-1]] = value
        if tree.waker is not None:
            send(tree.waker, "lua", "changed")


def peek(*keys: Any) -> Any:
    """The value at that path in this node's own tree, or None: `get` without a round trip."""
    _check_keys(keys)
    value: Any = _Tree.of(running().node).root
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


async def get(*keys: Any) -> Any:
    """The value at that path, or None if it is not set."""
    _check_keys(keys)
    home = _home()
    if home is not None:
        return await cluster.call(home, "@" + CLUSTER_NAME, "get", *keys)
    return peek(*keys)


async def wait(*keys: Any) -> Any:
    """The value at that path, waiting until it is set (CallError if the holding node goes away)."""
    _check_keys(keys)
    home = _home()
    if home is not None:
        return await cluster.call(home, "@" + CLUSTER_NAME, "wait", *keys)
    value = peek(*keys)
    if value is not None:
        return value
    return await call(await _waker(), "lua", "wait", *keys)


async def _waker() -> int:
    tree = _Tree.of(running().node)
    if tree.waker is None:
        tree.waker = await uniqueservice("datacenterd")
    return tree.waker


async def open() -> None:
    """Serve this node's tree to the cluster as ``@datacenter``: run it on the node the config names."""
    cluster.register(CLUSTER_NAME, await _waker())
