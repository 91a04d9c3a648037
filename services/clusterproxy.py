"""clusterproxy: a local address for a service on another node, as skynet's clusterproxy.

Each "lua" message to it goes to that service through the node's sender:
calls are answered by the sender straight to the caller, so the proxy holds
no coroutine and adds one local hop.
"""

import skypy
from skypy.cluster import forward
from skypy.errors import CallError
from skypy.serialize import pack


async def main(node, addr):
    def relay(session, source, *args):
        try:
            forward(node, source, session, ("req" if session else "push", addr, pack(*args)))
        except CallError as exc:
            if session:
                skypy.response().fail(str(exc))
            else:
                skypy.error(f"cluster: send to [{node}] {addr} dropped: {exc}")
            return
        skypy.ignoreret()  # the sender answers the caller

    skypy.dispatch("lua", relay)
