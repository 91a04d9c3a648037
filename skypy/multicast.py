"""skypy.multicast: channels that deliver every message to every subscriber once, in publish order.

    ch = await multicast.new()                     # on the node that will own the channel
    await multicast.subscribe(ch, on_news)         # in any service, on any node of the cluster
    multicast.publish(ch, "hello", 42)             # on_news("hello", 42) runs in each subscriber
    multicast.unsubscribe(ch)                      # or unsubscribe(ch, on_news)
    multicast.delete(ch)

The node that creates a channel owns it and puts its messages in one
order: a publish there fans out at once, and a publish on another node is
sent to the owner first. Each subscribing service gets one PTYPE_MULTICAST
message per publish, all of them carrying one payload object, so 10,000
subscribers cost 10,000 references to one message, not 10,000 copies
(``copy_messages`` aside). A message crosses to each other node with
subscribers once, on the cluster link (whose order it keeps), and that
node's `multicastd` fans it out there. A node whose subscribers have all
gone tells the owner when the next message arrives, and hears no more.

`subscribe` may be awaited, unlike skynet's: it then returns once the
owner sends to this node, so a service that subscribes and then publishes
hears its own message even when the channel lives on another node.
"""

from __future__ import annotations

from types import CoroutineType
from typing import Any, Callable, Generator

from . import cluster
from ._api.coroutines import fork, wait, wakeup
from ._api.lifecycle import on_exit, uniqueservice
from ._api.messages import dispatch, error, getenv, running
from ._core.message import PTYPE_MULTICAST
from ._core.node import Node

__all__ = ["Channel", "Subscription", "deliver", "delete", "link", "new", "publish", "subscribe", "unsubscribe"]

# A channel's name: its owner node's name (empty outside a cluster), "/", a number.
Channel = str
EXTENSION = "multicast"
# The name each node's multicastd has in the cluster.
CLUSTER_NAME = "multicast"


class _Channels:
    """One node's side of every channel it knows."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.last_id = 0
        # Channels this node owns -> the other nodes that have subscribers.
        self.owned: dict[Channel, set[str]] = {}
        # channel -> the local services subscribed, in subscription order.
        self.subscribers: dict[Channel, dict[int, None]] = {}
        # Channels of other nodes whose owner is known to send them here.
        self.joined: set[Channel] = set()
        # service -> its functions by channel.
        self.functions: dict[int, dict[Channel, list[Callable[..., Any]]]] = {}
        self.service: int | None = None

    @staticmethod
    def of(node: Node) -> _Channels:
        return node.extension(EXTENSION, _Channels, node)

    def fan_out(self, ch: Channel, args: tuple[Any, ...]) -> None:
        """Post one message, one payload for all, to each local subscriber of `ch`."""
        subscribers = self.subscribers.get(ch)
        if not subscribers:
            return
        source = running().handle
        msg_payload = (ch, args)
        post = self.node.post
        for handle in list(subscribers):
            post(handle, (source, 0, PTYPE_MULTICAST, msg_payload))


def _here() -> _Channels:
    return _Channels.of(running().node)


def _owner(ch: Channel) -> str:
    """The node that owns `ch` ("" for a node outside any cluster)."""
    owner, sep, _ = ch.rpartition("/")
    if not sep:
        raise ValueError(f"{ch!r} is not a multicast channel")
    return owner


def _node_name() -> str:
    name: str | None = getenv("node")
    return name or ""


async def _service() -> int:
    """This node's multicastd, started on first need."""
    channels = _here()
    if channels.service is None:
        channels.service = await uniqueservice("multicastd")
    return channels.service


async def new() -> Channel:
    """A new channel owned by this node."""
    channels = _here()
    if _node_name():
        await _service()  # other nodes reach the channel through it
    channels.last_id += 1
    ch = f"{_node_name()}/{channels.last_id}"
    channels.owned[ch] = set()
    return ch


def publish(ch: Channel, *args: Any) -> None:
    """Send ``args`` to every subscriber of `ch`, on every node; never blocks."""
    owner = _owner(ch)
    if owner != _node_name():
        cluster.send(owner, "@" + CLUSTER_NAME, "publish", ch, *args)
        return
    channels = _here()
    links = channels.owned.get(ch)
    if links is None:
        raise KeyError(f"no multicast channel {ch!r}: deleted, or never created")
    channels.fan_out(ch, args)
    for node in sorted(links):
        cluster.send(node, "@" + CLUSTER_NAME, "deliver", ch, *args)


def deliver(ch: Channel, *args: Any) -> bool:
    """For multicastd: fan a message from the owner out to this node's subscribers.

    False if there are none: multicastd then tells the owner to stop, and
    the next subscriber here asks it again.
    """
    channels = _here()
    if not channels.subscribers.get(ch):
        channels.joined.discard(ch)
        return False
    channels.fan_out(ch, args)
    return True


def link(ch: Channel, node: str, joined: bool) -> None:
    """For multicastd: on the owner, forward `ch` to `node` from now on (or no longer)."""
    links = _here().owned.get(ch)
    if links is None:
        if joined:
            raise KeyError(f"no multicast channel {ch!r}: deleted, or never created")
        return
    if joined:
        links.add(node)
    else:
        links.discard(node)


def subscribe(ch: Channel, fn: Callable[..., Any]) -> Subscription:
    """Call ``fn(*args)`` in this service for each message published on `ch` from now on.

    On the owner's node that holds at once. On another node the owner must
    first hear of it: await what this returns to know it has (``await
    multicast.subscribe(ch, fn)``), or leave it to happen once this
    coroutine suspends, as in skynet.
    """
    owner = _owner(ch)
    mine = owner == _node_name()
    channels = _here()
    if mine and ch not in channels.owned:
        raise KeyError(f"no multicast channel {ch!r}: deleted, or never created")
    svc = running()
    functions = channels.functions.get(svc.handle)
    if functions is None:
        functions = channels.functions[svc.handle] = {}
        dispatch("multicast", _dispatcher(functions))
        on_exit(lambda: _forget(channels, svc.handle))
    functions.setdefault(ch, []).append(fn)
    channels.subscribers.setdefault(ch, {})[svc.handle] = None
    if mine or ch in channels.joined:
        return Subscription(None)
    # Until the owner confirms, every subscriber here asks it (it is
    # idempotent there), so each can know when its own subscription holds.
    join = _Join()
    fork(_joining, ch, owner, join)
    return Subscription(join)


class _Join:
    """One request to a channel's owner to send to this node; and the coroutines waiting for it."""

    __slots__ = ("done", "error", "waiting")

    def __init__(self) -> None:
        self.done = False
        self.error: Exception | None = None
        self.waiting: list[object] = []


class Subscription:
    """What `subscribe` returns: awaiting it returns once the owner sends to this node (at once on the owner's)."""

    __slots__ = ("_join",)

    def __init__(self, join: _Join | None) -> None:
        self._join = join

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        join = self._join
        if join is None:
            return
        if not join.done:
            token = object()
            join.waiting.append(token)
            await wait(token)
        if join.error is not None:
            raise join.error


async def _joining(ch: Channel, owner: str, join: _Join) -> None:
    """Ask `owner` to send `ch` to this node's multicastd, then wake who awaits the subscription."""
    try:
        await _service()  # the owner forwards to it
        await cluster.call(owner, "@" + CLUSTER_NAME, "join", ch, _node_name())
        _here().joined.add(ch)
    except Exception as exc:
        join.error = exc
        error(f"multicast: subscribing to {ch} on node {owner!r} failed: {exc}")
    join.done = True
    for token in join.waiting:
        wakeup(token)


def unsubscribe(ch: Channel, fn: Callable[..., Any] | None = None) -> None:
    """Stop calling `fn` (every function of this service, with none) for messages on `ch`."""
    channels = _here()
    handle = running().handle
    functions = channels.functions.get(handle, {})
    fns = functions.get(ch, [])
    if fn is None:
        fns.clear()
    elif fn in fns:
        fns.remove(fn)
    if not fns:
        functions.pop(ch, None)
        channels.subscribers.get(ch, {}).pop(handle, None)


def delete(ch: Channel) -> None:
    """Delete channel `ch` of this node: no more messages; publishing on it is then an error."""
    if _owner(ch) != _node_name():
        raise ValueError(f"multicast channel {ch!r} belongs to node {_owner(ch)!r}; delete it there")
    channels = _here()
    channels.owned.pop(ch, None)
    channels.subscribers.pop(ch, None)


def _forget(channels: _Channels, handle: int) -> None:
    """A subscriber ended: it leaves every channel."""
    for ch in channels.functions.pop(handle, {}):
        channels.subscribers.get(ch, {}).pop(handle, None)


def _dispatcher(functions: dict[Channel, list[Callable[..., Any]]]) -> Callable[..., Any]:
    def on_message(session: int, source: int, ch: Channel, args: tuple[Any, ...]) -> Any:
        pending = []
        for fn in list(functions.get(ch, ())):
            result = fn(*args)
            if type(result) is CoroutineType:
                pending.append(result)
        if pending:
            return _in_turn(pending)
        return None

    return on_message


async def _in_turn(coroutines: list[CoroutineType[Any, Any, Any]]) -> None:
    for coroutine in coroutines:
        await coroutine
