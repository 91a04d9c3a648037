"""clusteragent: serves one connection from another cluster node, as skynet's clusteragent.

clusterd starts one per accepted connection. It decodes requests
(skypy.cluster.wire) as the bytes arrive and hands each to its service,
calls and pushes alike, in the order they completed on the wire; it writes
each call's answer when it comes, in whatever order they come. A name
query (a request to address 0) is answered from the names given to
`cluster.register`. Trace tags are read and ignored: skypy has no
skynet.trace. A packet that breaks the protocol closes the connection,
with a log line.
"""

import skypy
from skypy import cluster, socket
from skypy.cluster import wire
from skypy.errors import SkypyError
from skypy.lowlevel import post_request, traced, wait_answer
from skypy.netpack import PacketDecoder
from skypy.serialize import pack, unpack

names = {}  # cluster.register's names, shared by the node's agents


def answer(out, session, ok, msg):
    out += wire.encode_response(session, ok, msg)


def resolve(target):
    """The local address for a request's target, or None if no service answers to it."""
    if type(target) is int or target.startswith("."):
        return target
    if target.startswith("@"):
        return names.get(target[1:])
    return None


def push_to(addr, msg):
    try:
        skypy.send(addr, "lua", *unpack(msg))
    except ValueError as exc:
        skypy.error(f"cluster: undecodable push to {addr} dropped: {exc}")


def call_to(out, session, addr, msg):
    try:
        local_session, values = post_request(addr, "lua", *unpack(msg))
    except (SkypyError, ValueError) as exc:
        answer(out, session, False, str(exc).encode())
        return
    if values is None:
        skypy.fork(answer_later, out.fd, session, local_session)
    else:
        answer_with(out, session, values)


async def answer_later(fd, session, local_session):
    out = Answers(fd)
    try:
        values = await wait_answer(local_session)
    except SkypyError as exc:
        answer(out, session, False, str(exc).encode())
    else:
        answer_with(out, session, values)
    out.flush()


def answer_with(out, session, values):
    try:
        reply = pack(*values)
    except ValueError as exc:  # a value with no wire form
        answer(out, session, False, str(exc).encode())
    else:
        answer(out, session, True, reply)


class Answers(list):
    """Response packets for one connection, written together by `flush`."""

    def __init__(self, fd):
        super().__init__()
        self.fd = fd

    def flush(self):
        if self:
            socket.write(self.fd, b"".join(self))
            self.clear()


def serve(out, request):
    """Hand one request on, now: requests reach their services in the wire's order.
    A call answered at once is answered here; a coroutine waits for the others."""
    if request.target == 0:
        name = unpack(request.msg)[0] if request.msg else None
        handle = names.get(name) if isinstance(name, str) else None
        if handle is None:
            answer(out, request.session, False, b"name not found")
        else:
            answer(out, request.session, True, pack(handle))
        return
    addr = resolve(request.target)
    if addr is None:
        if request.push:
            skypy.error(f"cluster: push to unknown name {request.target} dropped")
        else:
            answer(out, request.session, False, b"Invalid name")
    elif request.trace is None:
        hand_on(out, addr, request)
    else:
        with traced(request.trace):  # the trace the wire brought goes on with the request
            hand_on(out, addr, request)


def hand_on(out, addr, request):
    if request.push:
        push_to(addr, request.msg)
    else:
        call_to(out, request.session, addr, request.msg)


async def main(fd, peer):
    global names
    names = cluster.registered()
    out = Answers(fd)  # the answers to one read's requests go out in one write
    packets, requests = PacketDecoder(), wire.RequestDecoder(cluster.options().max_request)

    def on_socket(session, source, kind, id, *args):
        # The connection's bytes are decoded here, inline, as skynet's gate
        # frames them in C: no coroutine is woken per read.
        if id != fd or kind != socket.DATA:
            return library(session, source, kind, id, *args)
        try:
            for body in packets.feed(args[0]):
                request = requests.feed(body)
                if request is not None:
                    serve(out, request)
        except (wire.ClusterProtocolError, ValueError) as exc:
            limit = " ([cluster] max_request)" if isinstance(exc, wire.MessageTooLarge) else ""
            skypy.error(f"cluster: bad packet from {peer}: {exc}{limit}; connection closed")
            out.flush()
            skypy.exit()  # closes the connection once what is written has gone
        out.flush()
        return None

    await socket.start(fd)
    library = skypy.dispatch("socket", on_socket)  # skypy.socket's handler, installed by start
    socket.onclose(fd, lambda id: skypy.exit())
