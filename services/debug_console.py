"""The debug console: operators type skynet's console commands over TCP (or curl ``/stat``).

    debug_console [host] port [greeting_delay]   # host defaults to 127.0.0.1; port 0 picks a free one

Greets ``Welcome to skynet console`` (after `greeting_delay` seconds of
silence, 0.25 by default, so that HTTP clients are not greeted), reads one
command per line, answers as skypy.console formats it. A line ``GET /cmd/arg`` is an HTTP request: the
path runs as the command ``cmd arg``, answered as HTTP/1.1, then the
connection closes, so ``curl http://127.0.0.1:PORT/stat`` works.

Any web page open in a local browser can send the console a request, so
HTTP is answered only when the Host header names a loopback address (or
localhost, or the console's own address) and no cross-site Origin comes
with it, and it runs only the commands that change nothing
(`skypy.ops.console.READ_ONLY`) unless the node has a ``[console] token``
and the request sends it as ``Authorization: Bearer TOKEN``. With a token,
a TCP session's first line must be ``auth TOKEN``. A line over 64 KiB is
an error, and the connection is closed.
"""

from urllib.parse import unquote

import skypy
from skypy import socket
from skypy.ops import console, guard

WELCOME = "Welcome to skynet console"
# Seconds a new connection may take to send an HTTP request line before it is
# greeted (the config's console.greeting_delay). A module global: every
# launch of this service has its own.
greeting_delay = 0.25
listen_host = "127.0.0.1"  # where this console listens
# The longest command or header line; a longer one ends the connection.
MAX_LINE = 64 << 10


def say(id, lines):
    socket.write(id, "".join(line + "\n" for line in lines).encode())


async def read_line(id):
    return (await socket.readline(id, max=MAX_LINE)).decode("utf-8", "replace").rstrip("\r")


def authorized(given):
    """Whether `given` is the node's console token."""
    return guard.authorized(given, console.token())


def respond(id, status, lines):
    body = "".join(line + "\n" for line in lines).encode()
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    socket.write(id, head.encode() + body)


async def http(id, request_line):
    """Answer one HTTP GET: its path is the command line; the answer is the text body."""
    headers = {}
    while line := await read_line(id):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    host = headers.get("host", "")
    if not guard.loopback(host, listen_host):
        return respond(id, "403 Forbidden", ["the console answers only requests for its loopback address (Host)"])
    origin = headers.get("origin")
    if guard.cross_site(origin, host, listen_host):
        return respond(id, "403 Forbidden", [f"the console answers no cross-site request (Origin: {origin})"])
    parts = request_line.split()
    path = parts[1] if len(parts) > 1 else "/"
    # `GET /` names no command: it answers the list of them, as `help` does.
    command = " ".join(unquote(p) for p in path.split("/") if p) or "help"
    name = command.split()[0]
    bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
    if name not in console.READ_ONLY and not authorized(bearer):
        return respond(id, "403 Forbidden", [
            f"{name} changes the node: over HTTP it needs the [console] token,"
            " sent as Authorization: Bearer TOKEN",
        ])
    respond(id, "200 OK", await console.run(command))


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
    authenticated = console.token() is None
    http_request = False
    try:
        while True:
            line = await read_line(id)
            if line.startswith("GET "):
                greeted = http_request = True
                await http(id, line)
                break
            greet()
            if not authenticated:
                command, _, given = line.partition(" ")
                if command != "auth" or not authorized(given.strip()):
                    say(id, ["authentication required: the first line must be auth TOKEN", "<CMD Error>"])
                    break
                authenticated = True
                say(id, ["<CMD OK>"])
                continue
            say(id, await console.run(line))
    except socket.LineTooLong:
        if http_request:
            respond(id, "431 Request Header Fields Too Large", [f"a header line is over {MAX_LINE} bytes"])
        else:
            say(id, [f"a line is over {MAX_LINE} bytes", "<CMD Error>"])
    except socket.SocketClosed:
        pass
    finally:
        skypy.error(f"{peer[0]}:{peer[1]} disconnected")
        await socket.close(id)


async def main(*args):
    global greeting_delay, listen_host
    host, port, *delay = ("127.0.0.1", *args) if len(args) == 1 else args
    if delay:
        greeting_delay = float(delay[0])
    listen_id, host, port = await socket.listen(host, int(port))
    listen_host = host
    skypy.error(f"Start debug console at {host}:{port}")
    await socket.start(listen_id, serve)
