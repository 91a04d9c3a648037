"""The chat lobby example's protocol (README.md, "The chat lobby"), one rule per test."""

import pytest

import skypy
from tests.helpers.chat import next_of


async def test_login_is_answered_by_joined_sent_to_everyone(lobby):
    alice = await lobby.login("alice")
    bob = await lobby.connect()
    await bob.send_packet("login bob")
    assert await bob.recv_packet() == b"joined bob"
    assert await alice.recv_packet() == b"joined bob"


async def test_a_name_in_use_is_refused(lobby):
    alice = await lobby.login("alice")  # noqa: F841 (held: a client dropped would disconnect)
    other = await lobby.connect()
    await other.send_packet("login alice")
    assert await other.recv_packet() == b"error name taken"


@pytest.mark.parametrize("name", ["", "has space", "x" * 17, "é"])
async def test_a_bad_name_is_refused(lobby, name):
    client = await lobby.connect()
    await client.send_packet(f"login {name}")
    assert (await client.recv_packet()).startswith(b"error bad name")


async def test_logging_in_twice_is_refused(lobby):
    alice = await lobby.login("alice")
    await alice.send_packet("login alice2")
    assert await alice.recv_packet() == b"error already logged in"


async def test_say_reaches_every_member_the_speaker_included_as_one_packet(lobby):
    alice, bob = await lobby.login("alice"), await lobby.login("bob")
    await alice.send_packet("say hello, how are you?")
    assert await next_of(alice, "said") == "said alice hello, how are you?"
    assert await next_of(bob, "said") == "said alice hello, how are you?"


async def test_say_before_login_is_refused(lobby):
    client = await lobby.connect()
    await client.send_packet("say hi")
    assert await client.recv_packet() == b"error not logged in"


async def test_say_over_4096_bytes_is_refused(lobby):
    alice = await lobby.login("alice")
    await alice.send_packet("say " + "é" * 2049)
    assert await alice.recv_packet() == b"error text over 4096 bytes"


async def test_who_lists_the_members_sorted_even_before_login(lobby):
    members = [await lobby.login("carol"), await lobby.login("alice")]  # noqa: F841 (held)
    client = await lobby.connect()
    await client.send_packet("who")
    assert await client.recv_packet() == b"users alice carol"


async def test_replies_keep_the_order_of_the_commands(lobby):
    client = await lobby.connect()
    await client.send_packet("login dave")  # waits for the lobby…
    await client.send_packet("who")  # …and this waits its turn behind it
    await client.send_packet("bogus")
    assert [await client.recv_packet() for _ in range(3)] == [
        b"joined dave", b"users dave", b"error unknown command: bogus",
    ]


async def test_quit_says_bye_closes_the_connection_and_tells_the_others(lobby):
    alice, bob = await lobby.login("alice"), await lobby.login("bob")
    await alice.send_packet("quit")
    assert (await alice.recv_eof())[-1] == b"bye"  # nothing after it
    assert await next_of(bob, "left") == "left alice"


async def test_a_client_that_disconnects_leaves_and_its_agent_exits(lobby):
    alice, bob = await lobby.login("alice"), await lobby.login("bob")
    await alice.close()
    assert await next_of(bob, "left") == "left alice"
    await bob.close()
    await lobby.until_no_agents()


async def test_a_late_joiner_sees_what_is_said_after_its_login_only(lobby):
    alice = await lobby.login("alice")
    await alice.send_packet("say before")
    await next_of(alice, "said")
    bob = await lobby.login("bob")
    await alice.send_packet("say after")
    assert await next_of(bob, "said") == "said alice after"


async def test_unknown_commands_and_bad_utf8_are_answered_with_errors(lobby):
    client = await lobby.connect()
    await client.send_packet("dance")
    await client.send_packet(b"\xff\xfe")
    assert await client.recv_packet() == b"error unknown command: dance"
    assert await client.recv_packet() == b"error packet is not UTF-8"


async def test_a_member_whose_agent_is_killed_leaves_the_lobby(lobby):
    alice = await lobby.login("alice")
    bob = await lobby.login("bob")
    _, bobs_agent = sorted(s.handle for s in lobby.node.node.services.values() if s.label == "agent")
    await skypy.kill(bobs_agent)
    assert await next_of(alice, "left") == "left bob"
    await bob.close()
    again = await lobby.login("bob")  # the name is free again
    await again.close()
