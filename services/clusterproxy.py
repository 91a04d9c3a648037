"""clusterproxy: a local address for a service on another node, as skynet's clusterproxy.

Each "lua" message to it goes to that service through the node's sender:
calls are answered by the sender straight to the caller, so the proxy holds
no coroutine and adds one local hop. It stands for the remote service while
the link lives: when the link dies it ends with reason "node down", so
whoever monitors it (as they would the remote service) is told.
"""

import skypy
from skypy.cluster import forward, link_down
from skypy.errors import CallError
from skypy.serialize import pack


async def stand_while_linked(node):
    try:
        reason = await link_down(node)
    except CallError as exc:
        reason = str(exc)
    skypy.error(f"cluster: link to [{node}] lost ({reason}): proxy ends")
    skypy.exit(skypy.ExitReason.NODE_DOWN)


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
    skypy.fork(stand_while_linked, node)
