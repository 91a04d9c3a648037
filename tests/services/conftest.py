import pytest

from tests.helpers.chat import Lobby


@pytest.fixture
async def lobby(node):
    """The example chat server on a free loopback port."""
    return await Lobby.start(node)
