"""A known core bug, found building skypy.socketchannel: kept here until service.py fixes it."""

import pytest
import trio

import skypy


@pytest.mark.xfail(strict=True, reason="a task that borrows the turn registers its wait token only "
                   "after getting the turn, so a wakeup sent by a coroutine that runs first is lost")
async def test_wakeup_sent_while_the_block_waits_for_the_turn_is_not_lost(node):
    token, ready = object(), object()

    async def waker():
        await skypy.wait(ready)
        skypy.wakeup(token)

    skypy.fork(waker)
    await skypy.yield_()  # the fork now waits on `ready`
    skypy.wakeup(ready)  # the waker is queued to resume first...
    with trio.fail_after(1):
        await skypy.wait(token)  # ...and wakes `token` while this task waits for the turn
