"""clusteragent: serves one connection from another cluster node, as skynet's clusteragent.

clusterd starts one per accepted connection. It decodes requests
(skypy.cluster_wire) and hands each to its service, calls and pushes alike
in the order they completed on the wire, then writes each call's answer
when it comes, in whatever order they come. A name query (a request to
address 0) is answered from the names given to `cluster.register`. Trace
tags are read and ignored: skypy has no skynet.trace. A packet that breaks
the protocol closes the connection, with a log line.
"""

import skypy
from skypy import cluster_wire, socket
from skypy.api import running
from skypy.clusterroutes import ClusterRoutes
from skypy.errors import SkypyError
from skypy.netpack import PacketDecoder
from skypy.pack import pack, unpack

names = {}  # cluster.register's names, shared by the node's agents


def answer(fd, session, ok, msg):
    socket.write(fd, b"".join(cluster_wire.encode_response(session, ok, msg)))


def resolve(target):
    """The local address for a request's target, or None if no service answers to it."""
    if type(target) is int or target.startswith("."):
        return target
    if target.startswith("@"):
        return names.get(target[1:])
    return None


def push_to(addr, msg):
    skypy.send(addr, "lua", *unpack(msg))


async def call_to(fd, session, addr, msg):
    try:
        values = await skypy.rawcall(addr, "lua", *unpack(msg))
        ok, reply = True, pack(*values)
    except (SkypyError, ValueError) as exc:  # the call failed, or a value has no wire form
        ok, reply = False, str(exc).encode()
    answer(fd, session, ok, reply)


def serve(fd, request):
    """Hand one request on. Through forks, which run in the order queued, each
    until it has posted its message: that keeps the wire's order."""
    if request.target == 0:
        name = unpack(request.msg)[0] if request.msg else None
        handle = names.get(name) if isinstance(name, str) else None
        if handle is None:
            answer(fd, request.session, False, b"name not found")
        else:
            answer(fd, request.session, True, pack(handle))
        return
    addr = resolve(request.target)
    if addr is None:
        if request.push:
            skypy.error(f"cluster: push to unknown name {request.target} dropped")
        else:
            answer(fd, request.session, False, b"Invalid name")
    elif request.push:
        skypy.fork(push_to, addr, request.msg)
    else:
        skypy.fork(call_to, fd, request.session, addr, request.msg)


async def read_requests(fd, peer):
    packets, requests = PacketDecoder(), cluster_wire.RequestDecoder()
    try:
        while True:
            for body in packets.feed(await socket.read(fd)):
                request = requests.feed(body)
                if request is not None:
                    serve(fd, request)
    except socket.SocketClosed:
        pass
    except (cluster_wire.ClusterProtocolError, ValueError) as exc:
        skypy.error(f"cluster: bad packet from {peer}: {exc}; connection closed")
    await socket.close(fd)
    skypy.exit()


async def main(fd, peer):
    global names
    names = ClusterRoutes.of(running().node).names
    await socket.start(fd)
    skypy.fork(read_requests, fd, peer)
