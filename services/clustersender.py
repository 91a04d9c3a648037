"""clustersender: this node's one connection to another cluster node, as skynet's clustersender.

skypy.cluster starts one per remote node on first use and sends it
``req addr msg`` (a call; the answer is the remote service's values, or an
error) and ``push addr msg`` (no answer); `msg` is packed arguments. The
connection is a socketchannel in session mode, dialled on first use with
no handshake. Every request goes out with `write`, in the order it came:
skynet sends multipart requests with `lwrite`, which lets later requests
overtake them; we keep the order instead.

A frozen peer (a stopped process, a dead host whose connection is still
up) must not hang calls: while calls wait, a peer silent for half of
`[cluster] heartbeat` seconds is sent a name query, which any live skynet
or skypy node answers at once, and one silent for the whole heartbeat is
declared dead: its calls fail and the next call dials again. An idle link
sends nothing extra. ``watch`` is answered, with the reason, when the live
connection next drops: the node's proxies end then, with reason "node down".
"""

from collections import deque

import skypy
from skypy import cluster
from skypy.cluster import wire
from skypy.netpack import PacketDecoder
from skypy.serialize import UnpackError, pack, unpack
from skypy.socketchannel import Channel, ChannelClosed

SESSION_MAX = 0xFFFF_FFFF
# What a heartbeat probe asks the peer for: a name query is ordinary
# traffic to skynet's cluster too, answered at once ("name not found").
PROBE_NAME = "skypy.heartbeat"

node = ""
channel: Channel
last_session = 0
waiting = 0  # calls sent and not yet answered
last_heard = 0.0  # when the peer last sent bytes, or calls began waiting on a quiet link
watching = False  # a coroutine runs `watch`
link_watchers: list[skypy.Responder] = []  # answered when the live connection drops


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
            data = await sock.read()
            heard()
            for body in self.packets.feed(data):
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


def heard():
    global last_heard
    last_heard = skypy.now()


def traced(packets):
    """A request's packets, after the trace tag of the request being served, if it is traced:
    the peer's agent hands the request on with it (skypy.trace)."""
    tag = skypy.tracetag()
    return packets if tag is None else [wire.encode_trace(tag), *packets]


def req(addr, msg):
    global waiting, watching
    session = new_session()
    packets = traced(wire.encode_request(addr, session, msg))
    reply = skypy.response()
    if not waiting:
        heard()  # silence counts from the moment a call waits
    waiting += 1
    if not watching:
        watching = True
        skypy.fork(watch)

    def answer(ok, value):
        global waiting
        waiting -= 1
        if type(addr) is not int:
            target = addr
        elif addr:
            target = skypy.address(addr)
        else:
            target = "(name query)"  # address 0: cluster.query, not a service
        where = f"cluster node [{node}] {target}"
        if not ok:
            text = value if isinstance(value, ChannelClosed) else value.decode(errors="replace")
            try:
                reply.fail(skypy.CallError(f"{where}: {text}"))
            except skypy.ResponseError:
                # The channel fails its waiters as the sender ends, after the
                # exit fan-out has failed every call it owed: nothing is left to say.
                pass
            return
        try:
            values = unpack(value)
        except UnpackError as exc:
            reply.fail(skypy.CallError(f"{where}: undecodable answer: {exc}"))
            return
        reply(*values)

    try:
        channel.post(packets, session, answer)
    except ChannelClosed as exc:
        waiting -= 1
        reply.fail(f"cluster node [{node}]: {exc}")


async def watch():
    """While calls wait: probe a peer silent for half the heartbeat, drop one silent for all of it."""
    global watching
    heartbeat = cluster.options().heartbeat
    probed = None  # the silence that was probed, by when it began
    try:
        while waiting:
            quiet = skypy.now() - last_heard
            if quiet >= heartbeat:
                channel.disconnect(f"no answer for {heartbeat:g} s (heartbeat): declared dead")
                return
            if quiet >= heartbeat / 2 and probed != last_heard:
                probed = last_heard
                probe()
            due = heartbeat if probed == last_heard else heartbeat / 2
            await skypy.sleep(max(due - quiet, 0.001))
    finally:
        watching = False


def probe():
    """A name query, answered at once by any live node; its bytes show the link is alive."""
    session = new_session()
    try:
        channel.post(wire.encode_request(0, session, pack(PROBE_NAME)), session, lambda ok, value: None)
    except ChannelClosed:
        pass  # the link is gone already; its calls have failed


def push(addr, msg):
    # A push that fits one packet carries session 0; a multipart one needs a
    # session to tag its parts, and skynet spends one on it too.
    session = new_session() if len(msg) >= wire.PART_SIZE else 0
    channel.post(traced(wire.encode_request(addr, session, msg, push=True)))


def watch_link():
    """Answer, with the reason, when the live connection (or the next one, if none is up) drops."""
    link_watchers.append(skypy.response())


def link_dropped(reason):
    watchers = list(link_watchers)
    link_watchers.clear()
    for reply in watchers:
        reply(reason)


async def close():
    """Close the connection (calls in flight fail) and end this sender."""
    await channel.close()
    skypy.exit()


async def main(name, host, port):
    global node, channel
    node = name
    channel = Channel(host, port, response=Responses())
    channel.drop_hooks.append(link_dropped)
    skypy.dispatch_commands({"req": req, "push": push, "exit": close, "watch": watch_link})
