"""Where cluster requests go: the node table, the cluster names, and each remote node's sender.

One ClusterRoutes per node (in ``node.extensions``), shared by its services.
skynet keeps this state in clusterd and in each service's copy of
cluster.lua; the services of a skypy node share one process, so they read
the table directly, and `cluster.send` never has to ask anything first.

A remote node's sender service is started on first use. Requests made
before it exists are held, in order, and handed to it the moment it does,
so requests from one service reach the link in the order they were made.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from .._api.coroutines import fork
from .._api.lifecycle import newservice
from .._api.messages import running, send
from .._api.tracing import marker
from .._core.config import CLUSTER_SETTINGS, host_port
from .._core.message import PTYPE_ERROR, PTYPE_LUA, PTYPE_TRACE, RawMessage
from ..errors import CallError

if TYPE_CHECKING:
    from .._core.node import Node

__all__ = ["ClusterOptions", "ClusterRoutes", "Route", "forward", "parse_address"]

HostPort = tuple[str, int]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class ClusterOptions:
    """The ``[cluster]`` settings: who may connect, how long a busy link may stay
    silent, and the largest multipart request a connection may send."""

    allow: tuple[Network, ...] | None = None
    """The peers' addresses and networks; None lets any peer connect."""
    heartbeat: float = 10.0
    """Seconds a link with calls outstanding may hear nothing before it is declared dead."""
    max_request: int = 64 << 20
    """Bytes: a multipart request announcing more, or a connection buffering more, is closed."""

    def allows(self, host: str) -> bool:
        """Whether a peer at address `host` may connect."""
        if self.allow is None:
            return True
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.allow)


def parse_address(node: str, text: str) -> HostPort:
    """``"host:port"`` as (host, port); ValueError naming `node` if it is not one."""
    where = host_port(text)
    if where is None:
        raise ValueError(f"cluster node [{node}]: address {text!r} is not \"host:port\"")
    return where


class Route:
    """How requests reach one remote node: its sender, or the requests held until it exists."""

    __slots__ = ("name", "address", "sender", "held")

    def __init__(self, name: str, address: HostPort) -> None:
        self.name = name
        self.address = address
        self.sender: int | None = None
        # Requests waiting for the sender, in order; None when none is being started.
        self.held: list[RawMessage] | None = None


class ClusterRoutes:
    """The cluster state of one node: node table, cluster names, routes to remote nodes."""

    def __init__(self, node: Node, table: Mapping[str, str | bool]) -> None:
        self.node = node
        self.table: dict[str, HostPort | None] = {}  # None: marked down
        self.names: dict[str, int] = {}  # registered with cluster.register, without the "@"
        self.routes: dict[str, Route] = {}
        self.options = ClusterOptions()
        self.update(table)

    @classmethod
    def of(cls, node: Node) -> ClusterRoutes:
        """The node's routes, made from its config's ``[cluster]`` table on first use."""
        return node.extension("cluster", cls, node, node.config.cluster)

    def update(self, table: Mapping[str, str | bool]) -> list[Route]:
        """Merge `table` (name -> "host:port" or False for down) in; return the routes it ends."""
        parsed: dict[str, HostPort | None] = {}
        for name, text in table.items():
            if name in CLUSTER_SETTINGS:
                self._set(name, text)
            elif text is False:
                parsed[name] = None
            elif isinstance(text, str):
                parsed[name] = parse_address(name, text)
            else:
                raise ValueError(f"cluster node [{name}]: {text!r} is neither \"host:port\" nor false")
        self.table.update(parsed)
        ended = []
        for name, where in parsed.items():
            route = self.routes.get(name)
            if route is not None and route.address != where:
                ended.append(self.routes.pop(name))
        return ended

    def _set(self, key: str, value: Any) -> None:
        """Take one ``[cluster]`` setting (checked by the config, or here for `reload`)."""
        what, ok = CLUSTER_SETTINGS[key]
        if not ok(value):
            raise ValueError(f"cluster setting {key} must be {what}, not {value!r}")
        if key == "allow":
            value = tuple(ipaddress.ip_network(text, strict=False) for text in value)
        self.options = attrs.evolve(self.options, **{key: value})

    def address(self, name: str) -> HostPort:
        """Where node `name` listens; CallError at once if it is unknown or marked down."""
        try:
            where = self.table[name]
        except KeyError:
            raise CallError(f"cluster node [{name}] is unknown (not in the cluster table)") from None
        if where is None:
            raise CallError(f"cluster node [{name}] is down.")
        return where

    def route(self, name: str) -> Route:
        """The route to node `name`, made on first use; CallError if it is unknown or down."""
        route = self.routes.get(name)
        if route is None or (route.sender is not None and route.sender not in self.node.services):
            # First use, or the sender is gone (killed by hand): start afresh.
            route = self.routes[name] = Route(name, self.address(name))
        elif self.table.get(name) is None:
            self.address(name)  # raises: marked down since
        return route

    def attach(self, route: Route, sender: int) -> bool:
        """The sender has started: hand it the held requests; False if the route ended meanwhile."""
        if self.routes.get(route.name) is not route:
            return False
        route.sender = sender
        held, route.held = route.held or [], None
        for msg in held:
            self.node.post(sender, msg)
        return True

    def fail_held(self, route: Route, reason: str) -> None:
        """Fail the calls held for `route` (pushes are logged and dropped), so none waits forever."""
        held, route.held = route.held or [], None
        for source, session, ptype, payload in held:
            if ptype == PTYPE_TRACE:
                continue  # the trace tag of the request after it
            if session:
                # Named by the reason alone: the caller addressed the remote service.
                self.node.post(source, (running().handle, session, PTYPE_ERROR, CallError(reason)))
            else:
                self.node.log(source, f"cluster push to [{route.name}] {payload[1]!r} dropped: {reason}")


def forward(name: str, source: int, session: int, payload: tuple[Any, ...]) -> None:
    """Post a request for node `name`'s sender as coming from `source`; hold it if there is no sender yet.

    The sender answers `source` directly, as a callee would. CallError at
    once if the node is unknown or marked down.
    """
    svc = running()
    routes = ClusterRoutes.of(svc.node)
    route = routes.route(name)
    msgs = [(source, session, PTYPE_LUA, payload)]
    if svc.request.trace is not None:
        # The sender's request carries the trace on to the wire (clustersender).
        msgs.insert(0, marker(svc, "call" if session else "send", f"cluster node [{name}]"))
    if route.sender is not None:
        for msg in msgs:
            svc.node.post(route.sender, msg)
        return
    if route.held is None:
        route.held = []
        fork(_start_sender, routes, route)
    route.held += msgs


async def _start_sender(routes: ClusterRoutes, route: Route) -> None:
    """Start the sender of `route` and hand it what was held; fail the held requests if that fails."""
    try:
        sender = await newservice("clustersender", route.name, *route.address)
    except BaseException as exc:
        # Also when this service is killed meanwhile: the callers must not hang.
        routes.fail_held(route, f"cluster node [{route.name}]: its sender did not start: {exc}")
        if isinstance(exc, Exception):
            return
        raise
    if not routes.attach(route, sender):
        routes.fail_held(route, f"cluster node [{route.name}] changed address while connecting")
        send(sender, "lua", "exit")
