"""clusterd: a node's cluster service, as skynet's clusterd: listens for other nodes, keeps the proxies.

skypy.cluster starts it on first need (`uniqueservice`). ``listen host
port`` serves other nodes on that address, one clusteragent per accepted
connection; ``proxy node addr`` returns the one clusterproxy standing for
`addr` on `node`, started on first request.
"""

import skypy
from skypy import cluster, socket

proxies = {}  # (node, addr) -> the proxy's handle
starting = {}  # (node, addr) -> responders of requests waiting for that proxy to start


async def accept(id, address):
    host, port = address
    if not cluster.options().allows(host):
        socket.close_fd(id)
        skypy.error(f"cluster: {host}:{port} is not in [cluster] allow: connection closed")
        return
    await skypy.newservice("clusteragent", id, f"{host}:{port}")


async def listen(host, port):
    id, host, port = await socket.listen(host, port)
    await socket.start(id, accept)
    skypy.error(f"cluster: listening on {host}:{port}")
    if host in ("0.0.0.0", "::"):
        who = "any host that reaches it" if cluster.options().allow is None else "the hosts of [cluster] allow"
        skypy.error(f"cluster: {host}:{port} is every interface: {who} may call this node's services")
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
        # Its link died: the next request gets a new proxy.
        skypy.monitor(proxies[key], lambda handle, reason: proxies.pop(key, None))
    except skypy.CallError as exc:
        for reply in starting.pop(key):
            reply.fail(str(exc))
        raise
    for reply in starting.pop(key):
        reply(proxies[key])
    return proxies[key]


async def main():
    skypy.dispatch_commands({"listen": listen, "proxy": proxy})
