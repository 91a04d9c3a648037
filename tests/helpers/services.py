"""Small services and helpers that many tests start from."""

import math

import trio

import skypy


def echo(session, source, *args):
    """Answer a call with its own arguments."""
    skypy.ret(*args)


async def echo_service():
    skypy.dispatch("lua", echo)


def write_service(folder, name, source):
    """Put a service module `name` with `source` in `folder` (a service_path entry)."""
    (folder / f"{name}.py").write_text(source)


class HeldConsumer:
    """A service that takes no "client" packet until released: what is sent to it piles up
    in its mailbox. Taken packets come out of `packets`, in order."""

    def __init__(self) -> None:
        self.released = trio.Event()
        self._send, self.packets = trio.open_memory_channel(math.inf)

    async def main(self) -> None:
        async def on_client(session, source, id, packet):
            await self.released.wait()  # keeps the turn: later packets wait in the mailbox
            self._send.send_nowait(packet)

        skypy.dispatch("client", on_client)
