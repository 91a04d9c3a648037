"""Addresses as text: ``":0000000a"``, as skynet prints them, works wherever a handle does."""

import pytest

import skypy
from tests.helpers.services import echo_service


def test_handle_parses_what_address_prints():
    assert skypy.handle(skypy.address(0x0100000A)) == 0x0100000A
    assert skypy.handle(":a") == 10


@pytest.mark.parametrize("text", ["0000000a", ":", ":xyz", ":123456789"])
def test_handle_refuses_what_is_not_an_address(text):
    with pytest.raises(ValueError, match="is not an address such as ':0000000a'"):
        skypy.handle(text)


async def test_call_send_and_kill_take_an_address_as_text(node):
    text = skypy.address(await skypy.newservice(echo_service))
    assert await skypy.call(text, "lua", "by text") == "by text"
    skypy.send(text, "lua", "sent")
    await skypy.kill(text)
    with pytest.raises(skypy.ServiceNotFound):
        await skypy.call(text, "lua", "gone")
