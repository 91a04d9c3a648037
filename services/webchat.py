"""The chat lobby on the web: a page at ``/`` and the lobby's protocol over WebSocket at ``/chat``.

    webchat = await skypy.newservice("webchat", lobby)
    host, port = await skypy.call(webchat, "lua", "open", "127.0.0.1", 8080)

Each WebSocket connection is one chat client, served as the TCP clients
are: an `agent` per connection, the same commands and replies (README.md,
"The chat lobby"), one lobby message per text frame. This service is that
agent's "gate": it hands each frame to the agent as a "client" packet, and
writes what the agent and the lobby ``deliver`` as text frames, so web and
terminal users chat together and see the lines in one order. The page
(webchat/index.html) is plain HTML and JavaScript: no build step, nothing
fetched from elsewhere.
"""

from pathlib import Path

import skypy
from skypy import http, websocket

PAGE = Path(__file__).with_name("webchat")

lobby: int | str = 0  # a handle, or the name of a supervised lobby
sockets: dict[int, websocket.WebSocket] = {}  # connection id -> its WebSocket
app = http.Router()


@app.websocket("/chat")
async def chat(ws: websocket.WebSocket) -> None:
    agent = await skypy.newservice("agent", ws.id, skypy.self(), lobby, True)
    sockets[ws.id] = ws
    try:
        while True:
            message = await ws.receive()
            skypy.send(agent, "client", ws.id, message.encode() if isinstance(message, str) else message)
    except websocket.Closed:
        pass
    finally:
        del sockets[ws.id]
        skypy.send(agent, "lua", "disconnect")


app.mount("/", http.static(PAGE))


def deliver(fd: int, text: str) -> None:
    """One line for a web client, from its agent or the lobby."""
    ws = sockets.get(fd)
    if ws is not None and ws.closed is None:
        ws.send(text)


async def kick(fd: int) -> None:
    """Close a web client's connection (after `quit`'s "bye", which was delivered first)."""
    ws = sockets.get(fd)
    if ws is not None:
        await ws.close(1000, "bye")


async def open_(host: str, port: int) -> tuple[str, int]:
    """Serve the page and the WebSocket on `host`:`port` (0: any free port); the address it listens on."""
    host, port = await http.serve(app, host, port)
    skypy.error(f"Web chat at http://{host}:{port}/")
    return host, port


async def main(lobby_addr: int | str) -> None:
    global lobby
    lobby = lobby_addr
    skypy.dispatch_commands({"open": open_, "deliver": deliver, "kick": kick})
