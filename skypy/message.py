"""The message record, skynet's protocol numbers and address formatting."""

from __future__ import annotations

from typing import Any

PTYPE_TEXT = 0
PTYPE_RESPONSE = 1
PTYPE_MULTICAST = 2
PTYPE_CLIENT = 3
PTYPE_SYSTEM = 4
PTYPE_HARBOR = 5
PTYPE_SOCKET = 6
PTYPE_ERROR = 7
PTYPE_DEBUG = 9
PTYPE_LUA = 10
PTYPE_TRACE = 12

HARBOR_SHIFT = 24
LOCAL_MASK = (1 << HARBOR_SHIFT) - 1


class Message:
    """One message in a mailbox: who sent it, the session to answer, the protocol and payload.

    A plain ``__slots__`` class rather than an attrs record: one is built per
    `send`, and the generated attrs ``__init__`` costs a third more here.
    """

    __slots__ = ("source", "session", "ptype", "payload")

    def __init__(self, source: int, session: int, ptype: int, payload: Any) -> None:
        self.source = source
        self.session = session
        self.ptype = ptype
        self.payload = payload

    def __repr__(self) -> str:
        return (
            f"Message(source={address(self.source)}, session={self.session}, "
            f"ptype={self.ptype}, payload={self.payload!r})"
        )


def address(handle: int) -> str:
    """Format a handle as skynet prints it: ``:0000000a``."""
    return f":{handle:08x}"


def harbor_of(handle: int) -> int:
    """The node (harbor) id in the top 8 bits of a handle."""
    return handle >> HARBOR_SHIFT
