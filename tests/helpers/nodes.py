"""A second node inside the test's own trio run: its own services, cluster listener and crash checks.

Quicker than a node in another process (tests/helpers/cluster.py) and just
as separate for what crosses the cluster: the two nodes share no service,
name or table, only the loopback TCP connection between them.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import trio

from skypy import cluster
from skypy.testing import NodeUnderTest, open_test_node

# What a test's own node must be to take part: node "a", listening on a free port.
NODE_A = {"node": "a", "cluster": {"a": "127.0.0.1:0"}}


async def listening_port(node: NodeUnderTest) -> int:
    """The port a named node's cluster listener got."""
    line = await node.wait_for_log("cluster: listening on", timeout=5)
    return int(line.rsplit(":", 1)[1])


@asynccontextmanager
async def node_b(node_a: NodeUnderTest, service_path: list[Path], **overrides: Any) -> AsyncIterator[NodeUnderTest]:
    """Node "b", in the cluster table of `node_a` (whose block must be the running service) and the other way round."""
    port_a = await listening_port(node_a)
    leave = trio.Event()

    async def run(task_status: trio.TaskStatus[NodeUnderTest]) -> None:
        config = {"node": "b", "cluster": {"a": f"127.0.0.1:{port_a}", "b": "127.0.0.1:0"}, **overrides}
        async with open_test_node(service_path=service_path, **config) as b:
            task_status.started(b)
            await leave.wait()

    async with trio.open_nursery() as nursery:
        b = await nursery.start(run)
        cluster.reload({"b": f"127.0.0.1:{await listening_port(b)}"})
        try:
            yield b
        finally:
            leave.set()
