"""The chat lobby under load and under bad clients: real sockets on loopback, bounded in time."""

import random

import pytest
import trio

from skypy.testing import no_fd_leaks
from tests.helpers.chat import Lobby, next_of

CLIENTS = 200
SAYS = 5


async def run_all(fn, items):
    async with trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(fn, item)


@pytest.mark.slow
async def test_200_clients_log_in_chat_and_quit_and_everyone_sees_every_message_in_one_order(lobby):
    names = [f"user{i}" for i in range(CLIENTS)]
    clients = {}
    heard = {}

    async def login(name):
        clients[name] = await lobby.login(name)

    async def chat(name):
        client = clients[name]
        for n in range(SAYS):
            await client.send_packet(f"say {name} message {n}")
        heard[name] = [await next_of(client, "said") for _ in range(CLIENTS * SAYS)]

    async def quit(name):
        async with clients[name] as client:
            await client.send_packet("quit")
            assert (await client.recv_eof())[-1] == b"bye"

    with no_fd_leaks():
        with trio.fail_after(40):
            await run_all(login, names)  # everyone is in before anyone speaks
            await run_all(chat, names)
            await run_all(quit, names)
            await lobby.until_no_agents()

    order = heard[names[0]]
    assert all(heard[name] == order for name in names)  # one order for all
    for name in names:  # in which each speaker's messages keep their order
        assert [m for m in order if m.startswith(f"said {name} {name} ")] == [
            f"said {name} {name} message {n}" for n in range(SAYS)
        ]


async def test_a_length_header_promising_more_than_is_sent_then_disconnect_harms_nobody(lobby):
    alice = await lobby.login("alice")
    liar = await lobby.login("liar")
    await liar.send_raw(b"\x10\x00" + b"say only part of it")  # promises 4096 bytes
    await liar.close()
    assert await next_of(alice, "left") == "left liar"
    await alice.send_packet("say still fine")
    assert await next_of(alice, "said") == "said alice still fine"


async def test_random_bytes_are_answered_or_dropped_and_harm_nobody(lobby):
    alice = await lobby.login("alice")
    noise = await lobby.connect()
    rng = random.Random(4)
    await noise.send_raw(bytes(rng.getrandbits(8) for _ in range(100_000)))
    await noise.close()
    await alice.send_packet("who")
    assert await next_of(alice, "users") == "users alice"


async def test_a_client_that_never_reads_is_warned_about_and_kicked_while_the_others_chat_on(lobby):
    talker = await lobby.login("talker")
    idle = await lobby.login("idle", rcvbuf=4096)  # from here on it reads nothing
    text = "x" * 4000
    said = 0
    with trio.fail_after(30):
        while not any("not reading: kicked" in line for _, line in lobby.node.log_lines):
            await talker.send_packet(f"say {text}")
            # The talker's own message comes back quickly, whatever the idle client does.
            assert await next_of(talker, "said") == f"said talker {text}"
            said += 1
    assert await lobby.node.wait_for_log(" K unsent, the client is not reading: kicked")
    assert said * len(text) < 8 << 20  # bounded: about 1 MiB queued, plus what the kernel holds
    await idle.close()
    assert await next_of(talker, "left") == "left idle"


async def test_maxclient_plus_one_connections_the_last_is_closed_and_the_rest_chat_on(node):
    lobby = await Lobby.start(node, maxclient=3)
    members = [await lobby.login(f"user{i}") for i in range(3)]
    extra = await lobby.connect()
    assert await extra.recv_eof() == []
    await members[0].send_packet("who")
    assert await next_of(members[0], "users") == "users user0 user1 user2"
    await node.wait_for_log("maxclient 3 reached")
