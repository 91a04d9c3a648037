"""The capture's `store` service (skynet_cluster.tsv header), plus what the behaviour tests need.

echo returns its args; fail raises; big returns 100000 bytes; push records
its arg (strings as "str:LEN:FIRST"); pushed returns what push recorded;
slow logs "slow started" then sleeps; connections counts this node's TCP
connections.
"""

import skypy
from skypy import cluster, socket

pushes = []


def echo(*args):
    skypy.ret(*args)


def fail():
    raise RuntimeError("store: fail requested")


def big():
    skypy.ret("0123456789" * 10000)


def push(value):
    pushes.append(f"str:{len(value)}:{value[:1]}" if isinstance(value, (str, bytes)) else value)


def pushed():
    skypy.ret(*pushes)


async def slow():
    skypy.error("slow started")
    await skypy.sleep(60)
    skypy.ret("slow done")


def connections():
    skypy.ret(sum(1 for s in socket.info() if s["kind"] == "tcp"))


COMMANDS = {f.__name__: f for f in (echo, fail, big, push, pushed, slow, connections)}


async def main():
    skypy.dispatch("lua", lambda session, source, cmd, *args: COMMANDS[cmd](*args))
    skypy.register(".store")
    cluster.register("store")
