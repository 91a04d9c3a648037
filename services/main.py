"""The default config's start service: launches the examples and says where they are."""

import sys

import skypy


async def main():
    db = await skypy.newservice("simpledb")
    await skypy.call(db, "lua", "set", "greeting", skypy.getenv("greeting"))
    skypy.error("simpledb says:", await skypy.call(db, "lua", "get", "greeting"))
    watchdog = await skypy.newservice("watchdog")
    conf = {"address": skypy.getenv("chat_address"), "port": skypy.getenv("chat_port"), "maxclient": 1024}
    host, port = await skypy.call(watchdog, "lua", "start", conf)
    skypy.error(f"chat lobby on {host}:{port}: {sys.executable} examples/chat_client.py NAME --port {port}")
    if skypy.getenv("web_port") is not None:
        # The same lobby on the web: a page and a WebSocket endpoint, browser and terminal users together.
        webchat = await skypy.newservice("webchat", await skypy.call(watchdog, "lua", "lobby"))
        await skypy.call(webchat, "lua", "open", skypy.getenv("web_address") or "127.0.0.1", skypy.getenv("web_port"))
    skypy.error("node ready; Ctrl-C stops it")
