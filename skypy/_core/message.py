"""The message record, skynet's protocol numbers and address formatting."""

from __future__ import annotations

from typing import Any, NamedTuple

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


class Message(NamedTuple):
    """One message in a mailbox: who sent it, the session to answer, the protocol and payload.

    Mailboxes hold plain 4-tuples in this field order, and the send path
    builds them as tuple literals: a tuple costs a third of a slotted
    object's time to build and, holding only untracked values, is soon
    dropped from the cyclic GC's lists, which matters with 200k messages
    queued. Readers unpack by position; this class names the fields.
    """

    source: int
    session: int
    ptype: int
    payload: Any


# The type of what mailboxes hold and `Node.post` takes: the plain 4-tuple
# the send path builds, of which a Message is a subtype.
RawMessage = tuple[int, int, int, Any]


def address(handle: int) -> str:
    """Format a handle as skynet prints it: ``:0000000a``."""
    return f":{handle:08x}"


def handle(text: str) -> int:
    """Parse an address as `address` prints it (``":0000000a"``) back into the handle."""
    digits = text.removeprefix(":")
    if not text.startswith(":") or not 1 <= len(digits) <= 8 or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"{text!r} is not an address such as ':0000000a'")
    return int(digits, 16)


def harbor_of(handle: int) -> int:
    """The node (harbor) id in the top 8 bits of a handle."""
    return handle >> HARBOR_SHIFT
