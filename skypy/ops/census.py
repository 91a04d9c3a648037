"""What a node is made of right now: its services' figures, its cluster links, its memory.

Read straight from the node's tables by the service that asks (the web
page's, a /metrics scrape), never by asking each service over the debug
protocol: a census of ten thousand services must not send them ten
thousand messages, nor count those in the figures it reads.
"""

from __future__ import annotations

import enum
import os
import resource
from typing import Any

import attrs

from .._core.message import address
from .._core.node import Node
from .._core.service import Service
from .debug import suspended

__all__ = ["LinkState", "ServiceFigures", "cluster_links", "figures", "names_by_handle", "rss_bytes"]


@attrs.frozen
class ServiceFigures:
    """One service's figures: the columns of the page's table, the series of /metrics."""

    handle: int
    name: str  # its first local name (".logger"), or ""
    label: str
    messages: int
    mailbox: int
    cpu: float
    coroutines: int

    def row(self) -> dict[str, Any]:
        """As the page's table shows it."""
        return {
            "address": address(self.handle), "name": self.name, "label": self.label, "messages": self.messages,
            "mailbox": self.mailbox, "cpu": round(self.cpu, 6), "coroutines": self.coroutines,
        }


def names_by_handle(node: Node) -> dict[int, str]:
    """Each named service's first local name, in sorted order, by handle."""
    names: dict[int, str] = {}
    for name in sorted(node.names):
        names.setdefault(node.names[name], name)
    return names


def figures(svc: Service, name: str) -> ServiceFigures:
    """`svc`'s figures now; `name` is its local name, or ""."""
    return ServiceFigures(
        svc.handle, name, svc.label, svc.messages_handled, len(svc.mailbox), svc.cpu, len(suspended(svc))
    )


class LinkState(enum.Enum):
    """How this node reaches one other cluster node."""

    DOWN = "down"  # marked down in [cluster] (false)
    IDLE = "idle"  # never used: the link is made on first use
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # its sender runs, but has no connection now


def cluster_links(node: Node, open_sockets: list[dict[str, Any]]) -> dict[str, LinkState]:
    """The state of this node's link to each node of its [cluster] table (none if it has no cluster),
    given its sockets as `skypy.socket.info()` lists them."""
    routes = node.extensions.get("cluster")
    if routes is None:
        return {}
    connected = {s["owner"] for s in open_sockets if s["state"] in ("connected", "halfclose_read")}
    links = {}
    for name, where in routes.table.items():
        route = routes.routes.get(name)
        if where is None:
            links[name] = LinkState.DOWN
        elif route is None or route.sender is None:
            links[name] = LinkState.IDLE
        else:
            links[name] = LinkState.CONNECTED if route.sender in connected else LinkState.DISCONNECTED
    return links


def rss_bytes() -> int:
    """The process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
