"""Wakes the coroutines that `skypy.sharetable.watch` a table, after each update (a uniqueservice).

    wait(name, seen) -> the table's version, once it is newer than `seen`
    updated(name, version)   (sent by sharetable.update)
"""

import skypy
from skypy import sharetable

# name -> the callers waiting for a version of it newer than the one they saw
waiting = {}


def wait(name, seen):
    current = sharetable.version(name)
    if current > seen:
        return current
    waiting.setdefault(name, []).append(skypy.response())


def updated(name, version):
    for reply in waiting.pop(name, []):
        reply(version)


async def main():
    skypy.dispatch_commands({"wait": wait, "updated": updated})
