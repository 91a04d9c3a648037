"""The chat example's agent: serves one client connection, started by the watchdog.

The gate forwards the client's packets here as "client" messages; the agent
answers them with `skypy.socket.write` on the connection, and exits when the
watchdog says the client has gone. If the lobby is a supervised one, named
(``.lobby``), and it ends, the client is told ``error lobby restarted`` and
may log in again to the new, empty lobby; a lobby that will not come back
(an unnamed one) ends the agent, which closes the connection. The protocol is in README.md ("The chat
lobby"). For a web client (started by services/webchat.py with `relay`
true) the "gate" is the web chat service: replies go to it as ``deliver fd
text`` messages, one WebSocket text frame each, and the lobby sends it the
member's lines the same way.
"""

import re
from collections import deque
from typing import Any, Awaitable, Callable

import skypy
from skypy import netpack, socket

NAME = re.compile(r"[A-Za-z0-9_-]{1,16}")
MAX_TEXT = 4096  # bytes of UTF-8 in one `say`

fd = 0
gate = 0
lobby: int | str = 0  # a handle, or the name of a supervised lobby that comes back
relay = False  # True: replies go to the gate as "deliver" messages (a web client)
name: str | None = None
# Packets that came while a command was waiting for the lobby; None when
# none is waiting. Commands run one at a time in arrival order, so a reply
# never overtakes the reply to an earlier packet.
backlog: deque[bytes] | None = None
# The monitor on the lobby instance this client joined (a supervised lobby).
watch: skypy.Monitor | None = None
# The client was told the lobby restarted while the packet being served waited.
told = False


def reply(text: str) -> None:
    if relay:
        skypy.send(gate, "lua", "deliver", fd, text)
    else:
        socket.write(fd, netpack.pack(text.encode()))


def on_packet(session: int, source: int, _fd: int, packet: bytes) -> Any:
    if backlog is not None:
        backlog.append(packet)
        return None
    command = parse(packet)
    if command is None:
        return None
    handler, arg = command
    if handler in WAITS:
        # Made inside the coroutine, not here: a coroutine of a service that
        # ends before it starts is closed unstarted, and would leave this one
        # never awaited.
        return drain(handler, arg)
    return handler(arg)


async def drain(handler: Callable[[str], Awaitable[None]], arg: str) -> None:
    """Run a command that waits for the lobby, then the packets that came meanwhile, in order."""
    global backlog
    backlog = deque()
    try:
        await handler(arg)
        while backlog:
            command = parse(backlog.popleft())
            if command is not None:
                step = command[0](command[1])
                if step is not None:
                    await step
    except skypy.CallError as exc:
        if isinstance(lobby, str):
            # Its supervisor is starting a new lobby. A member is told by the
            # monitor on the old one, which may not have run yet.
            if name is None and not told:
                reply("error lobby restarted")
            return
        # A lobby that is gone for good (killed from the console, say): this client can
        # be served no more, and when this agent ends the gate closes its connection.
        skypy.error(f"agent: {exc}; closing the connection")
        skypy.exit()
    finally:
        backlog = None


def parse(packet: bytes) -> tuple[Callable[[str], Awaitable[None] | None], str] | None:
    """The command a client packet asks for, and its argument; None once an error is replied."""
    global told
    told = False
    try:
        text = packet.decode()
    except UnicodeDecodeError:
        reply("error packet is not UTF-8")
        return None
    command, _, arg = text.partition(" ")
    handler = COMMANDS.get(command)
    if handler is None:
        reply(f"error unknown command: {command[:32]}")
        return None
    return handler, arg


async def login(arg: str) -> None:
    if name is not None:
        return reply("error already logged in")
    if not NAME.fullmatch(arg):
        return reply("error bad name: 1 to 16 of A-Z a-z 0-9 _ -")
    await join(arg)


async def join(wanted: str) -> None:
    global name, watch
    instance = skypy.localname(lobby) if isinstance(lobby, str) else None
    refused = await skypy.call(lobby, "lua", "join", fd, wanted, gate if relay else None, skypy.self())
    if refused:
        reply(f"error {refused}")
    else:
        name = wanted  # the lobby's "joined NAME" is the answer
        if instance is not None:
            watch = skypy.monitor(instance, lobby_ended)


def lobby_ended(handle: int, reason: str) -> None:
    """The supervised lobby this client joined has ended: its members are gone with it."""
    global name, watch, told
    watch = None
    if name is not None:
        name = None
        told = True
        reply("error lobby restarted")


def say(arg: str) -> None:
    if name is None:
        return reply("error not logged in")
    if not arg:
        return reply("error nothing to say")
    if len(arg.encode()) > MAX_TEXT:
        return reply(f"error text over {MAX_TEXT} bytes")
    skypy.send(lobby, "lua", "say", fd, arg)


async def who(arg: str) -> None:
    reply(" ".join(["users", *await skypy.call(lobby, "lua", "who")]))


async def quit(arg: str) -> None:
    global name, watch
    if watch is not None:
        skypy.demonitor(watch)
        watch = None
    if name is not None:
        name = None
        # Called, not sent: once the lobby has answered it writes nothing
        # more here, so "bye" is the last packet the client gets.
        await skypy.call(lobby, "lua", "leave", fd)
    reply("bye")
    skypy.send(gate, "lua", "kick", fd)  # it flushes "bye", then closes


COMMANDS: dict[str, Callable[[str], Awaitable[None] | None]] = {"login": login, "say": say, "who": who, "quit": quit}
# The commands that may wait for the lobby: each runs as a coroutine, and the
# client's next packets wait behind it, so replies keep their order.
WAITS = frozenset({login, who, quit})


def disconnect() -> None:
    if name is not None:
        skypy.send(lobby, "lua", "leave", fd)
    skypy.exit()


async def main(client_fd: int, gate_addr: int, lobby_addr: int | str, relayed: bool = False) -> None:
    global fd, gate, lobby, relay
    fd, gate, lobby, relay = client_fd, gate_addr, lobby_addr, relayed
    skypy.dispatch("client", on_packet)
    skypy.dispatch_commands({"disconnect": disconnect})
