"""The chat lobby under a supervisor, as the default config runs it: killed, it comes back."""

import skypy
from skypy import supervisor
from skypy.testing import FakeClient, open_test_node, wait_until
from tests.helpers.chat import Lobby, next_of
from tests.ops.test_console import connect


async def supervised_lobby(node):
    await supervisor.start([supervisor.child("lobby", name=".lobby", crash_policy="exit")])
    return await Lobby.start(node)


async def test_members_of_a_killed_lobby_are_told_it_restarted_and_can_join_again(node):
    lobby = await supervised_lobby(node)
    alice = await lobby.login("alice")
    bob = await lobby.login("bob")
    old = skypy.localname(".lobby")
    await skypy.kill(".lobby")
    assert await next_of(alice, "error") == "error lobby restarted"
    assert await next_of(bob, "error") == "error lobby restarted"
    await wait_until(lambda: skypy.localname(".lobby") not in (None, old))
    await alice.send_packet("login alice")
    assert await next_of(alice, "joined") == "joined alice"
    await alice.send_packet("who")
    assert await next_of(alice, "users") == "users alice"


async def test_a_client_not_logged_in_is_told_when_its_command_meets_the_restart(node):
    lobby = await supervised_lobby(node)
    carol = await lobby.connect()
    old = skypy.localname(".lobby")
    await skypy.kill(".lobby")
    await carol.send_packet("who")
    answer = (await carol.recv_packet()).decode()
    # Either the new lobby is up already, or the client hears why not: never a hang.
    assert answer in ("users", "error lobby restarted")
    await wait_until(lambda: skypy.localname(".lobby") not in (None, old))


async def test_the_default_configs_lobby_killed_from_the_console_comes_back(default_config):
    async with open_test_node(default_config) as node:
        port = int((await node.wait_for_log(r"chat lobby on")).rsplit("--port ", 1)[1])
        console = await connect(int((await node.wait_for_log(r"Start debug console at")).rsplit(":", 1)[1]))
        listed = (await console.ask("list"))[:-1]
        [sup] = [i for i, line in enumerate(listed) if "\tsupervisor " in line]
        assert listed[sup + 1] == f"  {skypy.address(node.localname('.lobby'))}\tlobby"
        alice = await FakeClient.connect(port)
        await alice.send_packet("login alice")
        assert await next_of(alice, "joined") == "joined alice"
        answer = await console.ask("kill .lobby")
        assert answer[-1] == "<CMD OK>"
        assert await next_of(alice, "error") == "error lobby restarted"
        await wait_until(lambda: node.localname(".lobby") is not None)
        await alice.send_packet("login alice")
        assert await next_of(alice, "joined") == "joined alice"
        await alice.close()
        await console.stream.aclose()
