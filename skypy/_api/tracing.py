"""Traces, as skynet's ``skynet.trace``: a tag on a request that every send and call it causes carries.

    skypy.trace()            # this request is traced: ":0000000a-1"
    skypy.tracetag()         # the tag of the request being served, or None

A traced send or call first sends its destination a PTYPE_TRACE message
with the tag; the destination's next request (this one: messages from one
sender to one receiver keep their order) then carries the tag, so the
sends and calls its handler makes are traced in turn, across services and,
through the cluster wire's trace packet, across nodes. Each hop is logged
by the service making it, ``<TRACE tag> call :0000000b``, and kept in the
node's recent hops (`hops`) for the console's ``trace`` and the web page.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from typing import Callable, Iterator, NamedTuple

import trio

from .._core.current import current
from .._core.message import PTYPE_TRACE, RawMessage, address
from .._core.node import Node
from .._core.protocol import Handler
from .._core.service import Service
from ..errors import SkypyError

__all__ = ["HANDLER", "HOPS_KEPT", "Hop", "TraceLog", "hops", "marker", "trace", "traced", "tracetag"]

HOPS_KEPT = 10_000  # the node's most recent hops, of all traces


class Hop(NamedTuple):
    """One logged step of a trace."""

    time: float  # seconds since the node started
    tag: str
    source: int
    text: str  # "call :0000000b", "send .name", "begin"


class TraceLog:
    """A node's recent hops, and who else is told of each (the OpenTelemetry export)."""

    def __init__(self) -> None:
        self.recent: deque[Hop] = deque(maxlen=HOPS_KEPT)
        self.listeners: list[Callable[[Hop], None]] = []

    @classmethod
    def of(cls, node: Node) -> TraceLog:
        """The node's trace log, made on first use."""
        return node.extension("trace", cls)


def _running() -> Service:
    svc = current.get(None)
    if svc is None:
        raise SkypyError("not inside a skypy service: trace from service code")
    return svc


def _log(svc: Service, tag: str, text: str) -> None:
    node = svc.node
    log = TraceLog.of(node)
    hop = Hop(trio.current_time() - node.started_at, tag, svc.handle, text)
    log.recent.append(hop)
    for listener in log.listeners:
        listener(hop)
    node.log(svc.handle, f"<TRACE {tag}> {text}")


def trace(tag: str | None = None) -> str:
    """Trace the request this coroutine serves: its sends and calls, and all they cause, carry `tag`
    (by default ``:ADDRESS-N``, new each time); returns the tag."""
    svc = _running()
    if tag is None:
        tag = f"{address(svc.handle)}-{next(svc.node.extension('trace.count', itertools.count, 1))}"
    svc.request.trace = tag
    _log(svc, tag, "begin")
    return tag


def tracetag() -> str | None:
    """The trace tag of the request this coroutine serves, or None if it is not traced."""
    return _running().request.trace


def marker(svc: Service, what: str, where: int | str) -> RawMessage:
    """Log a hop of `svc`'s traced request (a `what`, "send" or "call", to `where`) and return the
    PTYPE_TRACE message that must reach `where` just before it."""
    tag = svc.request.trace
    assert tag is not None
    _log(svc, tag, f"{what} {address(where) if isinstance(where, int) else where}")
    return (svc.handle, 0, PTYPE_TRACE, (tag,))


@contextlib.contextmanager
def traced(tag: str | None) -> Iterator[None]:
    """Within the block, this coroutine's sends and calls carry `tag` (None: none); for libraries
    that hand requests on for others (the cluster agent, with the tag the wire brought)."""
    request = _running().request
    old, request.trace = request.trace, tag
    try:
        yield
    finally:
        request.trace = old


def hops(node: Node, tag: str | None = None) -> list[Hop]:
    """The node's recent hops of trace `tag` (of every trace if None), oldest first."""
    return [hop for hop in TraceLog.of(node).recent if tag is None or hop.tag == tag]


def _received(session: int, source: int, tag: str) -> None:
    _running().trace_next = tag


# PTYPE_TRACE's handler, which every service starts with (installed by open_node).
HANDLER = Handler(_received)
