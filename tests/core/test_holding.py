"""HoldingMailbox, sans I/O: answers pass, requests wait, and releasing restores arrival order."""

from collections import deque

from hypothesis import given, strategies as st

from skypy._core.holding import HoldingMailbox
from skypy._core.message import PTYPE_ERROR, PTYPE_LUA, PTYPE_RESPONSE

PTYPES = st.sampled_from([PTYPE_RESPONSE, PTYPE_ERROR, PTYPE_LUA])


def message(n, ptype):
    return (1, n, ptype, (n,))


@given(queued=st.lists(PTYPES), arriving=st.lists(st.tuples(PTYPES, st.booleans())))
def test_released_messages_are_in_arrival_order_less_the_answers_taken(queued, arriving):
    sent = [message(n, ptype) for n, ptype in enumerate(queued)]
    mailbox = HoldingMailbox(deque(sent))
    taken = []
    for n, (ptype, take) in enumerate(arriving, start=len(queued)):
        msg = message(n, ptype)
        sent.append(msg)
        mailbox.append(msg)
        assert all(m[2] in (PTYPE_RESPONSE, PTYPE_ERROR) for m in mailbox)
        if take and mailbox:
            taken.append(mailbox.popleft())
    assert list(mailbox.released()) == [m for m in sent if m not in taken]
