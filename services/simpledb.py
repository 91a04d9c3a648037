"""A key/value store service, named .simpledb: the smallest useful skypy service.

    await skypy.call(".simpledb", "lua", "set", "k", "v")  # returns the old value
    await skypy.call(".simpledb", "lua", "get", "k")       # returns "v"
"""

import skypy

db = {}


def get(key):
    return db.get(key)


def set(key, value):
    old = db.get(key)
    db[key] = value
    return old


async def main():
    skypy.dispatch_commands({"get": get, "set": set})
    skypy.register(".simpledb")
