"""Start service of the tests' remote node: the store at :0000000a, where the capture addressed it."""

import skypy

CAPTURED_STORE = 0x0A


async def idle():
    pass


async def main():
    handle = await skypy.newservice(idle)
    while handle < CAPTURED_STORE - 1:
        handle = await skypy.newservice(idle)
    store = await skypy.newservice("store")
    assert store == CAPTURED_STORE, skypy.address(store)
    skypy.error("remote ready")
