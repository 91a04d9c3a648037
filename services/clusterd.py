"""clusterd: a node's cluster service, as skynet's clusterd: listens for other nodes, keeps the proxies.

skypy.cluster starts it on first need (`uniqueservice`). ``listen host
port`` serves other nodes on that address, one clusteragent per accepted
connection; ``proxy node addr`` returns the one clusterproxy standing for
`addr` on `node`, started on first request.
"""

import skypy
from skypy import socket

proxies = {}  # (node, addr) -> the proxy's handle
starting = {}  # (node, addr) -> responders of requests waiting for that proxy to start


async def accept(id, address):
    host, port = address
    await skypy.newservice("clusteragent", id, f"{host}:{port}")


async def listen(host, port):
    id, host, port = await socket.listen(host, port)
    await socket.start(id, accept)
    skypy.error(f"cluster: listening on {host}:{port}")
    return host, port


async def proxy(node, addr):
    key = (node, addr)
    if key in proxies:
        return proxies[key]
    if key in starting:
        starting[key].append(skypy.response())
        return None
    starting[key] = []
    try:
        proxies[key] = await skypy.newservice("clusterproxy", node, addr)
    except skypy.CallError as exc:
        for reply in starting.pop(key):
            reply.fail(str(exc))
        raise
    for reply in starting.pop(key):
        reply(proxies[key])
    return proxies[key]


async def main():
    skypy.dispatch_commands({"listen": listen, "proxy": proxy})
