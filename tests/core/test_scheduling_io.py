"""skynet's order with many coroutines waiting at once: on calls, timers, call timeouts and
sockets, interleaved with forks, waits and wakeups, checked against a reference model.

Each program runs on trio's virtual clock (MockClock, jumping whenever every task
waits), so timers and the peer's delayed answers land at known times; the model
replays the same program by skynet's rules: woken coroutines, then forks, then
the mailbox, and, when nothing can run, the next timer or socket event.
"""

import functools
import heapq
from collections import deque

import trio
import trio.testing
from hypothesis import assume, given, settings, strategies as st

import skypy
from skypy import socket
from skypy.testing import open_test_node
from tests.core.test_scheduling import draw_bodies

STEP = st.one_of(
    st.just(("log",)),
    st.just(("yield",)),
    st.just(("wait",)),
    st.just(("trio",)),
    st.tuples(st.just("wakeup"), st.integers(0, 11)),
    st.just(("call",)),
    st.tuples(st.just("sleep"), st.integers(1, 3)),
    st.tuples(st.just("call_timeout"), st.integers(1, 3)),
    # The peer answers after 0.5 s and a little more, so that no two socket
    # answers and no socket answer and timer are due at one instant.
    st.just(("socket",)),
)


@st.composite
def programs(draw):
    """Up to 12 coroutines, most of them forked; each after the first is started by an earlier one."""
    bodies = draw_bodies(draw, STEP, 12, ["fork", "fork", "timeout0"])
    # Number the socket steps: each gets its own delay.
    numbered, n = [], 0
    for body in bodies:
        steps = []
        for step in body:
            if step[0] == "socket":
                n += 1
                step = ("socket", n)
            steps.append(step)
        numbered.append(steps)
    return numbered


def socket_delay(n):
    return 0.5 + n / 64  # exact in binary: the model and the clock add the same floats


def model_trace(bodies):
    """What skynet's rules give, with virtual time for timers and the peer's answers."""
    trace, ready, forks, mailbox, waiting = [], deque(), deque(), deque(), set()
    pending, order, now = [], 0, 0.0  # (due, kind, order, coroutine): a timer (0) or a socket (1)
    pcs = [0] * len(bodies)

    def later(delay, kind, k):
        nonlocal order
        order += 1
        heapq.heappush(pending, (now + delay, kind, order, k))

    def run(k):
        while pcs[k] < len(bodies[k]):
            step = bodies[k][pcs[k]]
            pcs[k] += 1
            kind = step[0]
            if kind == "log":
                trace.append((k, pcs[k]))
            elif kind == "fork":
                forks.append(step[1])
            elif kind == "timeout0":
                mailbox.append(step[1])
            elif kind in ("yield", "call"):
                mailbox.append(k)  # the answer (or the wake-up) is the next message
                return
            elif kind in ("sleep", "call_timeout"):
                later(step[1], 0, k)
                return
            elif kind == "socket":
                later(socket_delay(step[1]), 1, k)
                return
            elif kind == "wait":
                waiting.add(k)
                return
            elif kind == "wakeup" and step[1] in waiting:
                waiting.discard(step[1])
                ready.append(step[1])

    run(0)
    while True:
        while ready or forks or mailbox:
            run((ready or forks or mailbox).popleft())
        if not pending:
            return trace
        due = pending[0][0]
        fired = []
        while pending and pending[0][0] == due:
            fired.append(heapq.heappop(pending))
        # Timers due together fire in the order they were set; a socket answer
        # due with anything else would race it, so such programs are not drawn.
        assume(all(kind == 0 for _, kind, _, _ in fired) or len(fired) == 1)
        now = due
        mailbox.extend(k for _, _, _, k in fired)


async def delayed_echo(stream):
    """The peer: answers each line `n` after `socket_delay(n)` seconds."""
    buffer = b""
    async for data in stream:
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            await trio.sleep(socket_delay(int(line)))
            await stream.send_all(line + b"\n")


async def run_program(bodies):
    trace = []
    async with open_test_node(), trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, delayed_echo, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]

        async def echo():
            skypy.dispatch("lua", lambda session, source, x: skypy.ret(x))

        async def sink():
            skypy.dispatch("lua", lambda session, source: skypy.ignoreret())  # never answers

        echo_addr = await skypy.newservice(echo)
        sink_addr = await skypy.newservice(sink)

        async def program():
            users = [k for k, body in enumerate(bodies) if any(step[0] == "socket" for step in body)]
            ids = {k: await socket.open("127.0.0.1", port) for k in users}

            async def coroutine(k):
                for pc, step in enumerate(bodies[k], 1):
                    kind = step[0]
                    if kind == "log":
                        trace.append((k, pc))
                    elif kind == "fork":
                        skypy.fork(coroutine, step[1])
                    elif kind == "timeout0":
                        skypy.timeout(0, functools.partial(coroutine, step[1]))
                    elif kind == "yield":
                        await skypy.yield_()
                    elif kind == "wait":
                        await skypy.wait(k)
                    elif kind == "trio":
                        await trio.sleep(0)  # not a skypy primitive: keeps the turn
                    elif kind == "wakeup":
                        skypy.wakeup(step[1])
                    elif kind == "call":
                        assert await skypy.call(echo_addr, "lua", (k, pc)) == (k, pc)
                    elif kind == "sleep":
                        await skypy.sleep(step[1])
                    elif kind == "call_timeout":
                        try:
                            await skypy.call(sink_addr, "lua", timeout=step[1])
                        except trio.TooSlowError:
                            pass
                        else:
                            raise AssertionError("the sink answered")
                    elif kind == "socket":
                        socket.write(ids[k], b"%d\n" % step[1])
                        assert await socket.readline(ids[k]) == b"%d" % step[1]

            skypy.fork(coroutine, 0)

        addr = await skypy.newservice(program)
        # Virtual time, past every timer and answer a program can set (12
        # coroutines of 6 steps, none over 4 s): then only waits never woken remain.
        await trio.sleep(1000)
        await skypy.kill(addr)
        nursery.cancel_scope.cancel()
    return trace


@settings(max_examples=60, deadline=None)
@given(bodies=programs())
def test_random_programs_with_calls_timers_and_sockets_follow_the_reference_order(bodies):
    expected = model_trace(bodies)
    clock = trio.testing.MockClock(autojump_threshold=0)
    assert trio.run(run_program, bodies, clock=clock) == expected
