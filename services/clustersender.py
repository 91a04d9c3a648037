"""clustersender: this node's one connection to another cluster node, as skynet's clustersender.

skypy.cluster starts one per remote node on first use and sends it
``req addr msg`` (a call; the answer is the remote service's values, or an
error) and ``push addr msg`` (no answer); `msg` is packed arguments. The
connection is a socketchannel in session mode, dialled on first use with
no handshake. Every request goes out with `write`, in the order it came:
skynet sends multipart requests with `lwrite`, which lets later requests
overtake them; we keep the order instead.
"""

from collections import deque

import skypy
from skypy.cluster import wire
from skypy.netpack import PacketDecoder
from skypy.serialize import UnpackError, unpack
from skypy.socketchannel import Channel, ChannelClosed

SESSION_MAX = 0xFFFF_FFFF

node = ""
channel: Channel
last_session = 0


class Responses:
    """Session-mode reader: cuts the stream into packets, then into whole responses."""

    def __init__(self):
        self.sock = None
        self.ready = deque()

    async def __call__(self, sock):
        if sock is not self.sock:
            # A new connection: nothing half-received on the old one carries over.
            self.sock = sock
            self.packets = PacketDecoder()
            self.responses = wire.ResponseDecoder()
            self.ready.clear()
        while not self.ready:
            for body in self.packets.feed(await sock.read()):
                response = self.responses.feed(body)
                if response is not None:
                    self.ready.append(response)
        response = self.ready.popleft()
        return response.session, response.ok, response.msg


def new_session():
    """The next wire session: 1..2^32-1, skipping any still waiting for its answer."""
    global last_session
    while True:
        last_session = last_session % SESSION_MAX + 1
        if not channel.waiting(last_session):
            return last_session


def req(addr, msg):
    session = new_session()
    packets = wire.encode_request(addr, session, msg)
    reply = skypy.response()

    def answer(ok, value):
        # Address 0 is a name query (cluster.query), not a service.
        target = addr if type(addr) is not int else skypy.address(addr) if addr else "(name query)"
        where = f"cluster node [{node}] {target}"
        if not ok:
            text = value if isinstance(value, ChannelClosed) else value.decode(errors="replace")
            reply.fail(f"{where}: {text}")
            return
        try:
            values = unpack(value)
        except UnpackError as exc:
            reply.fail(f"{where}: undecodable answer: {exc}")
            return
        reply(*values)

    try:
        channel.post(packets, session, answer)
    except ChannelClosed as exc:
        reply.fail(f"cluster node [{node}]: {exc}")


def push(addr, msg):
    # A push that fits one packet carries session 0; a multipart one needs a
    # session to tag its parts, and skynet spends one on it too.
    session = new_session() if len(msg) >= wire.PART_SIZE else 0
    channel.post(wire.encode_request(addr, session, msg, push=True))


async def close():
    """Close the connection (calls in flight fail) and end this sender."""
    await channel.close()
    skypy.exit()


async def main(name, host, port):
    global node, channel
    node = name
    channel = Channel(host, port, response=Responses())
    skypy.dispatch_commands({"req": req, "push": push, "exit": close})
