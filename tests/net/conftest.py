import math

import pytest
import trio

from skypy import socket
from tests.helpers.peers import Listener


@pytest.fixture
async def listener(node):
    """A skypy listening socket on a free loopback port, owned by the test body."""
    send, receive = trio.open_memory_channel(math.inf)
    id, host, port = await socket.listen("127.0.0.1", 0)
    await socket.start(id, lambda new_id, address: send.send_nowait(new_id))
    return Listener(id, host, port, receive)
