"""The chat example's watchdog: starts the gate and the lobby, and one agent per connection.

    watchdog = await skypy.newservice("watchdog")
    host, port = await skypy.call(watchdog, "lua", "start",
                                  {"address": "127.0.0.1", "port": 8888, "maxclient": 1024})

The lobby is the one named ``.lobby`` if there is one (the default config
runs it under a supervisor, which starts it again if it ends), else one of
its own. The gate tells it of each connection (``socket open``/``close``/…); it starts
an agent, forwards the connection to it, and tells it when the client has
gone. A client that leaves more than 1 MiB of chat unread is kicked.
"""

from typing import Any

import skypy

gate = 0
# The lobby's name when it is supervised (so agents reach whichever instance
# runs now), else the handle of the watchdog's own lobby.
lobby: int | str = 0
agents: dict[int, int] = {}  # connection fd -> its agent


async def start(conf: dict[str, Any]) -> tuple[str, int]:
    """Open the gate with `conf` (gate's `open` table); the address it listens on."""
    global gate, lobby
    lobby = ".lobby" if skypy.localname(".lobby") is not None else await skypy.newservice("lobby")
    gate = await skypy.newservice("gate")
    return await skypy.call(gate, "lua", "open", conf)


async def opened(fd: int, addr: str) -> None:
    agent = await skypy.newservice("agent", fd, gate, lobby)
    agents[fd] = agent
    # Nothing is read from the client before this, so no packet is lost.
    await skypy.call(gate, "lua", "forward", fd, 0, agent)


def closed(fd: int) -> None:
    agent = agents.pop(fd, None)
    if agent is not None:
        skypy.send(agent, "lua", "disconnect")


def failed(fd: int, message: str) -> None:
    skypy.error(f"socket {fd} error: {message}")  # "close" follows


def warning(fd: int, unsent: int) -> None:
    if unsent:  # 0: the backlog has drained
        skypy.error(f"socket {fd}: {unsent // 1024} K unsent, the client is not reading: kicked")
        skypy.send(gate, "lua", "kick", fd)


def data(fd: int, packet: bytes) -> None:
    skypy.error(f"socket {fd}: packet for no agent dropped ({len(packet)} bytes)")


EVENTS = {"open": opened, "close": closed, "error": failed, "warning": warning, "data": data}


def socket(event: str, fd: int, *args: Any) -> Any:
    return EVENTS[event](fd, *args)


def count() -> int:
    """How many agents are serving connections."""
    return len(agents)


def get_lobby() -> int | str:
    """The lobby's address, for another front to the same chat (services/webchat.py)."""
    return lobby


async def main() -> None:
    skypy.dispatch_commands({"start": start, "socket": socket, "agents": count, "lobby": get_lobby})
