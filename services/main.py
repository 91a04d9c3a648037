"""The default config's start service: launches the examples and says where they are."""

import skypy


async def main():
    db = await skypy.newservice("simpledb")
    await skypy.call(db, "lua", "set", "greeting", skypy.getenv("greeting"))
    skypy.error("simpledb says:", await skypy.call(db, "lua", "get", "greeting"))
    skypy.error("node ready; Ctrl-C stops it")
