"""What the node's page shows, kept by the page's service: a sample of the node each second,
the last ten minutes of samples for the charts, and each service's last log lines.

Sampling reads the node's tables (census.py), never asks the services, so
a page left open costs the node one pass over its services a second.
Memory is the exception: a service's footprint is a walk of its objects,
so each second measures a tenth of the services, in turn.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import trio

from ... import socket as skysocket, supervisor
from ..._core.message import address
from ..._core.node import Node
from ..._core.service import Service
from .. import census
from .._footprint import size_of
from ..debug import roots

__all__ = ["HISTORY", "LOG_LINES", "TOP_MAILBOXES", "Live"]

HISTORY = 600  # samples kept: ten minutes, one a second
LOG_LINES = 50  # recent log lines kept per service
TOP_MAILBOXES = 5  # services whose mailbox length the chart draws: the longest now
MEMORY_ROUNDS = 10  # a service's memory is measured every this many samples


class Live:
    """The page's view of one node, sampled by `sample`."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.logs: dict[int, deque[str]] = {}
        self.memory: dict[int, float] = {}  # handle -> KiB, when last measured
        self.retired_messages = 0
        self._messages: dict[int, int] = {}  # handle -> messages at the last sample
        self._last = (trio.current_time(), time.process_time(), 0)  # time, process CPU, all messages
        self._round = 0
        node.log_hooks.append(self._logged)
        node.retire_hooks.append(self._retired)

    def _logged(self, source: int, text: str) -> None:
        if source in self.node.services:
            lines = self.logs.get(source)
            if lines is None:
                lines = self.logs[source] = deque(maxlen=LOG_LINES)
            lines.append(text)

    def _retired(self, svc: Service) -> None:
        self.retired_messages += svc.messages_handled
        self.logs.pop(svc.handle, None)
        self.memory.pop(svc.handle, None)
        self._messages.pop(svc.handle, None)

    def sample(self) -> dict[str, Any]:
        """The node now: its figures, a row per service, and the chart point (also kept in `history`)."""
        node = self.node
        now, cpu_now = trio.current_time(), time.process_time()
        then, cpu_then, messages_then = self._last
        elapsed = max(now - then, 1e-9)
        names = census.names_by_handle(node)
        supervisors = {child: sup for sup, children in supervisor.tree().items() for child in children}
        self._round = (self._round + 1) % MEMORY_ROUNDS
        rows, total, last = [], self.retired_messages, self._messages
        for svc in list(node.services.values()):
            fig = census.figures(svc, names.get(svc.handle, ""))
            if svc.handle % MEMORY_ROUNDS == self._round or svc.handle not in self.memory:
                self.memory[svc.handle] = size_of(roots(svc), stop=[node]) / 1024
            row = fig.row()
            row["rate"] = round((fig.messages - last.get(svc.handle, fig.messages)) / elapsed, 1)
            row["memory"] = round(self.memory[svc.handle], 1)
            sup = supervisors.get(svc.handle)
            row["supervisor"] = "" if sup is None else address(sup)
            last[svc.handle] = fig.messages
            total += fig.messages
            rows.append(row)
        self._last = (now, cpu_now, total)
        sockets = skysocket.info()
        busiest = sorted(rows, key=lambda r: -r["mailbox"])[:TOP_MAILBOXES]
        point = {
            "t": round(now - node.started_at, 3),
            "rate": round(max(total - messages_then, 0) / elapsed, 1),
            "rss": census.rss_bytes(),
            "sockets": len(sockets),
            "mailboxes": {r["address"]: r["mailbox"] for r in busiest if r["mailbox"]},
        }
        self.history.append(point)
        figures = {
            "harbor": node.harbor,
            "uptime": round(now - node.started_at, 1),
            "services": len(rows),
            "rate": point["rate"],
            "cpu": round(100 * (cpu_now - cpu_then) / elapsed, 1),
            "rss": point["rss"],
            "sockets": point["sockets"],
            "links": {name: state.value for name, state in census.cluster_links(node, sockets).items()},
        }
        return {"type": "tick", "node": figures, "services": rows, "point": point}

    def log_lines(self, handle: int) -> list[str]:
        """The last lines `handle` logged, oldest first."""
        return list(self.logs.get(handle, ()))
