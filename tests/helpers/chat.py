"""Helpers for the chat lobby tests: a running lobby and logged-in fake clients."""

from __future__ import annotations

import attrs

from skypy.testing import FakeClient, NodeUnderTest, wait_until


@attrs.define
class Lobby:
    """The example chat server (watchdog, gate, lobby, agents) on a free loopback port."""

    node: NodeUnderTest
    watchdog: int
    port: int

    @classmethod
    async def start(cls, node: NodeUnderTest, maxclient: int = 1024) -> Lobby:
        watchdog = await node.newservice("watchdog")
        _, port = await node.call(watchdog, "lua", "start", {"address": "127.0.0.1", "port": 0, "maxclient": maxclient})
        return cls(node, watchdog, port)

    async def connect(self, **options) -> FakeClient:
        return await FakeClient.connect(self.port, **options)

    async def login(self, name: str, **options) -> FakeClient:
        """A client logged in as `name`, its own `joined` already read."""
        client = await self.connect(**options)
        await client.send_packet(f"login {name}")
        assert await client.recv_packet() == f"joined {name}".encode()
        return client

    async def agents(self) -> int:
        return await self.node.call(self.watchdog, "lua", "agents")

    async def until_no_agents(self) -> None:
        await wait_until(self._none_left)

    async def _none_left(self) -> bool:
        return await self.agents() == 0


async def next_of(client: FakeClient, kind: str) -> str:
    """The text of the next packet starting with `kind` (e.g. "said"), skipping the others."""
    while True:
        packet = (await client.recv_packet()).decode()
        if packet.split(" ", 1)[0] == kind:
            return packet
