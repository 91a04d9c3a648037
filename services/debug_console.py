"""The debug console: operators type skynet's console commands over TCP (or curl ``/stat``).

    debug_console [host] port [greeting_delay]   # host defaults to 127.0.0.1; port 0 picks a free one

Greets ``Welcome to skynet console`` (after `greeting_delay` seconds of
silence, 0.25 by default, so that HTTP clients are not greeted), reads one
command per line, answers as skypy.console formats it. A line ``GET /cmd/arg`` is an HTTP request: the
path runs as the command ``cmd arg``, answered as HTTP/1.1, then the
connection closes, so ``curl http://127.0.0.1:PORT/stat`` works.
"""

from urllib.parse import unquote

import skypy
from skypy import socket
from skypy.ops import console

WELCOME = "Welcome to skynet console"
# Seconds a new connection may take to send an HTTP request line before it is
# greeted (the config's console.greeting_delay). A module global: every
# launch of this service has its own.
greeting_delay = 0.25


def say(id, lines):
    socket.write(id, "".join(line + "\n" for line in lines).encode())


async def read_line(id):
    return (await socket.readline(id)).decode("utf-8", "replace").rstrip("\r")


async def http(id, request_line):
    """Answer one HTTP GET: its path is the command line; the answer is the text body."""
    while await read_line(id):
        pass  # headers, up to the blank line
    parts = request_line.split()
    path = parts[1] if len(parts) > 1 else "/"
    # `GET /` names no command: it answers the list of them, as `help` does.
    lines = await console.run(" ".join(unquote(p) for p in path.split("/") if p) or "help")
    body = "".join(line + "\n" for line in lines).encode()
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    socket.write(id, head.encode() + body)


async def serve(id, peer):
    await socket.start(id)
    skypy.error(f"{peer[0]}:{peer[1]} connected")
    greeted = False

    def greet():
        nonlocal greeted
        if not greeted:
            greeted = True
            say(id, [WELCOME])

    # A console user waits for the greeting, but an HTTP client speaks first
    # and would take the greeting for an HTTP/0.9 answer: greet only once
    # the client has been silent a moment, or has sent a console command.
    skypy.timeout(greeting_delay, greet)
    try:
        while True:
            line = await read_line(id)
            if line.startswith("GET "):
                greeted = True
                await http(id, line)
                break
            greet()
            say(id, await console.run(line))
    except socket.SocketClosed:
        pass
    finally:
        skypy.error(f"{peer[0]}:{peer[1]} disconnected")
        await socket.close(id)


async def main(*args):
    global greeting_delay
    host, port, *delay = ("127.0.0.1", *args) if len(args) == 1 else args
    if delay:
        greeting_delay = float(delay[0])
    listen_id, host, port = await socket.listen(host, int(port))
    skypy.error(f"Start debug console at {host}:{port}")
    await socket.start(listen_id, serve)
