"""Chat clients for the chaos test, in a process of their own: ``python -m tests.helpers.chaos_clients PORT N SECONDS``.

Each logs in, then asks ``who`` (one in five also says something) with a
short pause between requests, logging in again whenever told the lobby
restarted and reconnecting when its connection is closed (its agent was
killed). A request not answered within a second raises TooSlowError and the
process fails; otherwise it prints its tally as one JSON line.

In their own process so that the node under test has its core to itself,
as it would with real clients: load made on the node's own thread would
only measure how long that thread's queue is.
"""

from __future__ import annotations

import json
import random
import sys

import attrs
import trio

from skypy.testing import FakeClient

ANSWER_WITHIN = 1.0
# The first answer on a new connection also waits for its agent to start,
# behind every other client connecting at that moment: admission, not a call.
FIRST_ANSWER_WITHIN = 5.0
# Seconds a client waits between two requests (load shaping, not synchronisation).
THINK = (0.02, 0.1)


@attrs.define
class Tally:
    answers: int = 0
    errors: dict[str, int] = attrs.Factory(dict)  # error lines, by text
    dropped: int = 0  # connections closed by the server (their agent was killed)
    slowest: float = 0.0  # seconds, the slowest answer to a request on an established connection


async def client(port: int, n: int, tally: Tally, stop: trio.Event) -> None:
    rng = random.Random(n)
    while not stop.is_set():
        try:
            async with await FakeClient.connect(port) as chat:
                logged_in = False
                within = FIRST_ANSWER_WITHIN
                while not stop.is_set():
                    sent = trio.current_time()
                    await chat.send_packet("who" if logged_in else f"login user{n}")
                    line = await answer(chat, "users" if logged_in else f"joined user{n}", within)
                    if within == ANSWER_WITHIN:
                        tally.slowest = max(tally.slowest, trio.current_time() - sent)
                    within = ANSWER_WITHIN
                    if line == "error already logged in":
                        logged_in = True  # an earlier line was the answer to something else
                    elif line.startswith("error"):
                        # Told the lobby restarted (its members are gone), or the login met the restart.
                        tally.errors[line] = tally.errors.get(line, 0) + 1
                        logged_in = False
                    else:
                        tally.answers += 1
                        logged_in = True
                    if logged_in and n % 5 == 0:
                        await chat.send_packet("say hello")
                    await trio.sleep(rng.uniform(*THINK))
        except (EOFError, trio.BrokenResourceError):
            tally.dropped += 1


async def answer(chat: FakeClient, expected: str, within: float) -> str:
    """The answer to the request just sent (skipping others' broadcasts), within `within` seconds."""
    with trio.fail_after(within):
        while True:
            line = (await chat.recv_packet()).decode()
            if line.startswith((expected, "error")):
                return line


async def main(port: int, clients: int, seconds: float) -> None:
    tally = Tally()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for n in range(clients):
            nursery.start_soon(client, port, n, tally, stop)
        await trio.sleep(seconds)
        stop.set()
    print(json.dumps(attrs.asdict(tally)), flush=True)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
