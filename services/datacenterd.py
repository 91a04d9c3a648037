"""The datacenter's service (a uniqueservice): answers `wait`s once their key is set, and other nodes' requests.

On the node that holds a cluster's tree it is registered as @datacenter
(`skypy.datacenter.open`), and other nodes' set, get and wait come here.

    set(k1, ..., value)    get(k1, ...)    wait(k1, ...)
    changed()              (sent by datacenter.set when someone may be waiting)
"""

import skypy
from skypy import datacenter

# path -> the callers waiting for it to be set
waiting = {}


def set(*keys_and_value):
    datacenter.set(*keys_and_value)


def get(*keys):
    return datacenter.peek(*keys)


def wait(*keys):
    value = datacenter.peek(*keys)
    if value is not None:
        return value
    waiting.setdefault(keys, []).append(skypy.response())


def changed():
    for keys in list(waiting):
        value = datacenter.peek(*keys)
        if value is not None:
            for reply in waiting.pop(keys):
                reply(value)


async def main():
    skypy.dispatch_commands({"set": set, "get": get, "wait": wait, "changed": changed})
