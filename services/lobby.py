"""The chat example's lobby: who is logged in, and the broadcast of what they say.

It writes broadcasts straight to every member's connection (any service may
write to any socket id), so all members see them in one order: the order in
which the lobby took them. A member that joined through a relay (the web
chat's WebSocket front, services/webchat.py) gets its lines as ``deliver``
messages to that relay instead, sent in the same order. A member whose
agent ends without leaving (killed from the console, say) is monitored out:
it leaves, as a disconnected client does.
"""

import skypy
from skypy import netpack, socket

# Names are at most 16 bytes, so a `users` packet lists this many within netpack's 64 KiB.
MAX_USERS = 3000

members: dict[int, str] = {}  # connection fd -> name
by_name: dict[str, int] = {}
relays: dict[int, int] = {}  # connection fd -> the service that delivers its lines (web members)
agents: dict[int, int] = {}  # connection fd -> the agent that joined it, while it is a member


def broadcast(text: str) -> None:
    frame = netpack.pack(text.encode())
    for fd in members:
        relay = relays.get(fd)
        if relay is None:
            socket.write(fd, frame)
        else:
            skypy.send(relay, "lua", "deliver", fd, text)


def join(fd: int, name: str, relay: int | None = None, agent: int | None = None) -> str | None:
    """Log `fd` in as `name` and tell every member, the newcomer first among them; an error or None.

    With `relay`, the member's lines go to that service (``deliver fd text``) instead of its socket.
    With `agent`, the member leaves when that service ends, if it has not left before."""
    if name in by_name:
        return "name taken"
    if len(members) >= MAX_USERS:
        return "lobby full"
    members[fd] = name
    by_name[name] = fd
    if relay is not None:
        relays[fd] = relay
    if agent is not None:
        agents[fd] = agent
        skypy.monitor(agent, agent_ended)
    broadcast(f"joined {name}")
    return None


def say(fd: int, text: str) -> None:
    name = members.get(fd)
    if name is not None:
        broadcast(f"said {name} {text}")


def agent_ended(agent: int, reason: str) -> None:
    for fd in [fd for fd, member in agents.items() if member == agent]:
        leave(fd)


def leave(fd: int) -> None:
    name = members.pop(fd, None)
    relays.pop(fd, None)
    agents.pop(fd, None)
    if name is not None:
        del by_name[name]
        broadcast(f"left {name}")


def who() -> list[str]:
    return sorted(by_name)


async def main() -> None:
    skypy.dispatch_commands({"join": join, "say": say, "leave": leave, "who": who})
