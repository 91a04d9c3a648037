"""skypy.cluster: services of other nodes, over TCP, speaking skynet's cluster protocol.

    from skypy import cluster

    cluster.reload({"db": "127.0.0.1:2528"})        # or the config's [cluster] table
    await cluster.open("db")                         # on node db: listen at its address
    cluster.register("store", store)                 # on db: callable as "@store"
    value = await cluster.call("db", "@store", "get", key)
    cluster.send("db", "@store", "set", key, value)
    store = await cluster.proxy("db", "@store")      # then plain skypy.call(store, "lua", ...)

An address on the other node is a handle, a ``.name`` local to that node
or an ``@name`` registered there with `register`. Arguments and answers
travel in skynet's serialisation (skypy.pack), so strings come back as
str, or bytes when they are not UTF-8. Each remote node gets one sender
service holding one connection, dialled on first use; each incoming
connection gets an agent service (services/cluster*.py). Requests from
one service to another node arrive in the order they were made.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .._api import messages as api
from .._api.lifecycle import uniqueservice
from .._api.messages import running
from .._core import config
from .._core.message import handle
from ..errors import CallError
from ..serialize import pack
from ._routes import ClusterOptions, ClusterRoutes, forward

__all__ = [
    "ClusterOptions", "call", "forward", "link_down", "open", "options", "proxy", "query", "register",
    "registered", "reload", "send",
]

Address = int | str


def _target(addr: Address) -> Address:
    """Check a remote address: a handle (or ``":0000000a"``), a ``.name`` or an ``@name``."""
    if isinstance(addr, str) and addr.startswith(":"):
        return handle(addr)
    if (type(addr) is int and addr > 0) or (isinstance(addr, str) and addr[:1] in (".", "@") and len(addr) > 1):
        return addr
    raise ValueError(f"cluster address {addr!r} is not a handle, a '.name' or an '@name'")


def reload(nodes: Mapping[str, str | bool] | None = None) -> None:
    """Merge `nodes` (name -> "host:port", or False: down) into the node table.

    With no argument, read the ``[cluster]`` table of the node's config file
    again. A node whose address changed gets a new connection on next use;
    calls in flight to its old address fail.
    """
    svc = running()
    if nodes is None:
        source = Path(svc.node.config.source)
        nodes = config.load(source).cluster if source.is_file() else svc.node.config.cluster
    for route in ClusterRoutes.of(svc.node).update(nodes):
        if route.sender is not None:
            api.send(route.sender, "lua", "exit")


async def open(name_or_port: str | int) -> tuple[str, int]:
    """Listen for other nodes at this node's address in the table, or on a port of every
    interface (0: any free port); returns the (host, port) bound."""
    if isinstance(name_or_port, str):
        host, port = ClusterRoutes.of(running().node).address(name_or_port)
    else:
        host, port = "0.0.0.0", name_or_port
    clusterd = await uniqueservice("clusterd")
    bound: tuple[str, int] = await api.call(clusterd, "lua", "listen", host, port)
    return bound


async def call(node: str, addr: Address, *args: Any, timeout: float | None = None) -> Any:
    """Call the service at `addr` on cluster node `node`; its answer as `skypy.call` gives it.

    CallError if the node is unknown or down (at once), if the remote call
    fails, or if the connection drops first; trio.TooSlowError after `timeout`.
    """
    return api.values_of(await _request(node, _target(addr), pack(*args), timeout))


async def _request(node: str, addr: int | str, msg: bytes, timeout: float | None) -> tuple[Any, ...]:
    svc = running()
    route = ClusterRoutes.of(svc.node).route(node)
    # The sender answers a failure with a CallError naming the remote node
    # and service (not itself, which the caller never heard of).
    if route.sender is not None:
        return await api.rawcall(route.sender, "lua", "req", addr, msg, timeout=timeout)
    session = svc.new_session()
    forward(node, svc.handle, session, ("req", addr, msg))
    return await api.wait_answer(session, timeout)


def send(node: str, addr: Address, *args: Any) -> None:
    """Send to the service at `addr` on node `node` without waiting; if the node is unknown
    or down, the message is logged and dropped."""
    svc = running()
    try:
        forward(node, svc.handle, 0, ("push", _target(addr), pack(*args)))
    except CallError as exc:
        svc.node.log(svc.handle, f"cluster.send dropped: {exc}")


def register(name: str, addr: int | None = None) -> None:
    """Let other nodes reach `addr` (default: this service) as ``@name``."""
    svc = running()
    if not name or name[0] in "@.":
        raise ValueError(f"cluster name {name!r}: give it without '@' or '.', e.g. register('store')")
    ClusterRoutes.of(svc.node).names[name] = svc.handle if addr is None else addr


def options() -> ClusterOptions:
    """This node's ``[cluster]`` settings (allow, heartbeat, max_request), for the cluster services."""
    return ClusterRoutes.of(running().node).options


def registered() -> Mapping[str, int]:
    """The names given to `register` on this node (without the ``@``), as a live read-only view.

    What the node's cluster agents answer name queries and ``@name`` requests from.
    """
    return MappingProxyType(ClusterRoutes.of(running().node).names)


async def query(node: str, name: str) -> int:
    """The handle of the service registered as `name` on node `node`; CallError if there is none."""
    handle: int = (await _request(node, 0, pack(name), None))[0]
    return handle


async def link_down(node: str) -> str:
    """Wait until the connection to `node` drops (the live one, else the next one made); why it did.

    CallError if the node's sender ends first (the node is marked down, or
    this node is stopping): the link is gone either way.
    """
    svc = running()
    route = ClusterRoutes.of(svc.node).route(node)
    if route.sender is not None:
        reason: str = await api.call(route.sender, "lua", "watch")
        return reason
    session = svc.new_session()
    forward(node, svc.handle, session, ("watch",))
    return str(api.values_of(await api.wait_answer(session)))


async def proxy(node: str, addr: Address) -> int:
    """A local handle standing for `addr` on `node`: calls and sends to it go there.

    When the link to `node` dies, the proxy ends with reason "node down"
    (what a `skypy.monitor` on it is told); ask again for a new one.
    """
    ClusterRoutes.of(running().node).route(node)  # an unknown or down node fails now
    clusterd = await uniqueservice("clusterd")
    handle: int = await api.call(clusterd, "lua", "proxy", node, _target(addr))
    return handle
