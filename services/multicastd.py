"""A node's multicast service (a uniqueservice, @multicast in the cluster): the cluster side of skypy.multicast.

    publish(ch, ...)      from a publisher on another node, to the channel's owner
    deliver(ch, ...)      from the owner, to fan out to this node's subscribers
    join(ch, node)        from a node whose first subscriber to `ch` came: forward to it
    leave(ch, node)       from a node with no subscribers left to `ch`: stop
"""

import skypy
from skypy import cluster, multicast


def publish(ch, *args):
    multicast.publish(ch, *args)


def deliver(ch, *args):
    if not multicast.deliver(ch, *args):
        # Nobody here listens any more: the owner can stop sending. A
        # subscriber that came meanwhile joined before this message was
        # taken, so this leave cannot overtake its join.
        owner = ch.rpartition("/")[0]
        cluster.send(owner, "@multicast", "leave", ch, skypy.getenv("node"))


def join(ch, node):
    multicast.link(ch, node, True)


def leave(ch, node):
    multicast.link(ch, node, False)


async def main():
    skypy.dispatch_commands({"publish": publish, "deliver": deliver, "join": join, "leave": leave})
    if skypy.getenv("node"):
        cluster.register("multicast")
