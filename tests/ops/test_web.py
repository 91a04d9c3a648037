"""The node's web page: its live WebSocket, its safety rules and its actions, then the page in a real browser."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

import skypy
from skypy import supervisor, websocket
from skypy._core.config import build
from tests.helpers.web import TIMEOUT, curl, exchange, start_web_console, title_served_by_skypy_run

TOKEN = "s3cret"
with_token = pytest.mark.skypy_config(web={"port": 0, "token": TOKEN})


async def echo() -> None:
    skypy.dispatch("lua", lambda session, source, x: skypy.ret(x))


async def open_live(base: str, **headers: str) -> websocket.WebSocket:
    return await websocket.connect(base.replace("http:", "ws:") + "/live", headers=headers or None)


async def next_of(ws: websocket.WebSocket, kind: str) -> dict[str, Any]:
    """The next message of type `kind` on the page's socket, skipping the others."""
    with trio.fail_after(TIMEOUT):
        while True:
            message = json.loads(await ws.receive())
            if message["type"] == kind:
                return message


async def ask(ws: websocket.WebSocket, kind: str, **request: Any) -> dict[str, Any]:
    ws.send(json.dumps(request))
    return await next_of(ws, kind)


async def configured_page(node) -> str:
    """The base URL of the page the node's [web] config started."""
    line = await node.wait_for_log("Web console at http://")
    return re.search(r"http://\S+(?=/)", line).group(0)


async def test_the_page_loads_nothing_from_elsewhere(node):
    base = await start_web_console(node)
    for path in ("/", "/page.js", "/page.css"):
        text = await curl(f"{base}{path}")
        assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", text), path
    assert "<title>skypy node</title>" in await curl(f"{base}/")


async def test_the_live_socket_sends_the_history_then_a_sample_each_second_with_every_service(node):
    base = await start_web_console(node)
    ws = await open_live(base)
    hello = await next_of(ws, "hello")
    assert hello["actions"] is False  # no token configured
    worker = await node.newservice(echo)
    tick = await next_of(ws, "tick")
    rows = {row["address"]: row for row in tick["services"]}
    assert rows[skypy.address(worker)]["label"] == "echo"
    assert rows[skypy.address(node.localname(".logger"))]["name"] == ".logger"
    assert set(rows[skypy.address(worker)]) == {
        "address", "name", "label", "messages", "rate", "mailbox", "cpu", "coroutines", "memory", "supervisor",
    }
    assert tick["node"]["services"] == len(rows)
    assert {"uptime", "rate", "cpu", "rss", "sockets", "links"} <= set(tick["node"])
    assert tick["point"]["rss"] > 0
    await ws.close()


async def test_a_services_detail_shows_its_coroutines_log_lines_and_info(node):
    base = await start_web_console(node)

    async def waiting() -> None:
        skypy.info_func(lambda: {"state": "waiting"})
        skypy.error("waiting for nothing")
        skypy.fork(skypy.wait, "nothing")

    addr = skypy.address(await node.newservice(waiting))
    ws = await open_live(base)
    detail = await ask(ws, "detail", op="detail", address=addr)
    assert detail["logs"][-1] == "waiting for nothing"
    assert "wait 'nothing'" in detail["task"]
    assert detail["info"] == "{'state': 'waiting'}"
    await ws.close()


async def test_actions_are_refused_without_a_configured_token(node):
    base = await start_web_console(node)
    worker = await node.newservice(echo)
    ws = await open_live(base)
    result = await ask(ws, "result", op="kill", address=skypy.address(worker), token="anything")
    assert result["ok"] is False and "no [web] token" in result["text"]
    assert await node.call(worker, "lua", 1) == 1
    await ws.close()


@with_token
async def test_with_the_token_the_page_kills_a_service_and_logs_its_messages(node, tmp_path):
    base = await configured_page(node)
    worker = await node.newservice(echo)
    ws = await open_live(base)
    assert (await next_of(ws, "hello"))["actions"] is True
    wrong = await ask(ws, "result", op="kill", address=skypy.address(worker), token="guess")
    assert wrong["ok"] is False and "wrong token" in wrong["text"]
    logged = await ask(ws, "result", op="logon", address=skypy.address(worker), token=TOKEN)
    assert logged["ok"] is True
    await node.call(worker, "lua", "hello")
    assert (await ask(ws, "result", op="logoff", address=skypy.address(worker), token=TOKEN))["ok"] is True
    assert "'hello'" in (tmp_path / f"{worker:08x}.log").read_text()
    killed = await ask(ws, "result", op="kill", address=skypy.address(worker), token=TOKEN)
    assert killed == {"type": "result", "ok": True, "text": f"killed {skypy.address(worker)}"}
    with pytest.raises(skypy.CallError):
        await node.call(worker, "lua", 1)
    await ws.close()


async def start_supervised(node) -> tuple[int, int]:
    """A supervisor of one echo child named .echo: (supervisor, child)."""
    sup = await node.call(await node.newservice(_supervising), "lua")
    return sup, node.localname(".echo")


async def _supervising() -> None:
    async def start(session: int, source: int) -> None:
        skypy.ret(await supervisor.start([supervisor.child(echo, name=".echo")]))

    skypy.dispatch("lua", start)


async def test_a_supervised_service_shows_its_supervisor(node):
    base = await start_web_console(node)
    sup, child = await start_supervised(node)
    ws = await open_live(base)
    rows = {row["address"]: row for row in (await next_of(ws, "tick"))["services"]}
    assert rows[skypy.address(child)]["supervisor"] == skypy.address(sup)
    assert rows[skypy.address(sup)]["supervisor"] == ""
    await ws.close()


@with_token
async def test_with_the_token_the_page_restarts_a_supervised_service_and_only_those(node):
    base = await configured_page(node)
    _, child = await start_supervised(node)
    ws = await open_live(base)
    restarted = await ask(ws, "result", op="restart", address=skypy.address(child), token=TOKEN)
    assert restarted["ok"] is True
    assert node.localname(".echo") != child and restarted["text"].endswith(skypy.address(node.localname(".echo")))
    lone = await node.newservice(echo)
    refused = await ask(ws, "result", op="restart", address=skypy.address(lone), token=TOKEN)
    assert refused["ok"] is False and "is not supervised" in refused["text"]
    await ws.close()


async def test_a_request_for_a_host_that_is_not_loopback_is_refused(node):
    base = await start_web_console(node)
    port = int(base.rsplit(":", 1)[1])
    answer = await exchange(port, b"GET /metrics HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403 ") and b"(Host)" in answer


async def test_a_cross_site_websocket_is_closed_as_a_policy_violation(node):
    base = await start_web_console(node)
    ws = await open_live(base, origin="http://evil.example")
    with pytest.raises(websocket.Closed) as closed, trio.fail_after(TIMEOUT):
        await ws.receive()
    assert closed.value.code == 1008 and "Origin: http://evil.example" in closed.value.reason


def test_a_page_off_loopback_needs_a_token():
    with pytest.raises(skypy.ConfigError, match=r"key 'web.host': 0.0.0.0 is not a loopback address"):
        build("test", {"web": {"host": "0.0.0.0", "port": 8001}})
    assert build("test", {"web": {"host": "0.0.0.0", "port": 8001, "token": TOKEN}}).web is not None


async def test_skypy_run_serves_the_page_of_the_default_config(default_config, tmp_path):
    assert await title_served_by_skypy_run(default_config, tmp_path, "Web console at http://127.0.0.1:") == "skypy node"


# --- in a real browser ----------------------------------------------------------------

SCREENSHOT = "web-console.png"


def browse(url: str, start_service: Any, screenshot: Path) -> dict[str, Any]:
    """Open the page; check a service started now shows within 2 s, sorting, and a drawn chart; save a screenshot."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT * 1000)
            page.goto(url)
            page.wait_for_selector("#services tbody tr")
            address = start_service()
            page.wait_for_selector(f'#services tr[data-address="{address}"]', timeout=2000)
            # Sorted by address (the default), a supervised service follows its supervisor, a level down.
            tree = page.evaluate(
                """() => [...document.querySelectorAll('#services tbody tr')].map(
                    (tr) => [tr.dataset.address, Number(tr.dataset.depth)])"""
            )
            page.click('#services th[data-key="messages"]')
            by_messages = [int(t) for t in page.locator("#services tbody td:nth-child(4)").all_inner_texts()]
            page.click('#services th[data-key="label"]')
            by_label = page.locator("#services tbody td:nth-child(3)").all_inner_texts()
            page.wait_for_function("Number(document.querySelector('#chart-rate').dataset.points) >= 2")
            drawn = page.evaluate(
                """() => {
                    const c = document.querySelector('#chart-rate');
                    const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    let coloured = 0;
                    for (let i = 0; i < pixels.length; i += 4) if (pixels[i + 3] && pixels[i + 2] > pixels[i]) coloured++;
                    return coloured;
                }"""
            )
            page.click(f'#services tr[data-address="{address}"]')
            page.wait_for_function("document.querySelector('#detail-logs').textContent.includes('busy')")
            page.click('#services th[data-key="address"]')  # the tree, for the screenshot
            page.screenshot(path=str(screenshot), full_page=True)
            return {"by_messages": by_messages, "by_label": by_label, "drawn": drawn, "tree": tree}
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run installs it)")
async def test_the_page_in_a_browser_shows_new_services_sorts_and_draws(node, tmp_path):
    base = await start_web_console(node)
    sup, child = await start_supervised(node)
    chatty = await node.newservice(echo)

    async def chat() -> None:  # some traffic for the charts and the table
        while True:
            for n in range(50):
                await node.call(chatty, "lua", n)
            await trio.sleep(0.1)

    async def busy() -> None:
        skypy.error("busy with nothing")
        skypy.dispatch("lua", lambda session, source: None)

    def start_service() -> str:
        return skypy.address(trio.from_thread.run(node.newservice, busy))

    screenshot = tmp_path / SCREENSHOT
    async with trio.open_nursery() as nursery:
        nursery.start_soon(chat)
        seen = await trio.to_thread.run_sync(browse, base + "/", start_service, screenshot)
        nursery.cancel_scope.cancel()
    assert seen["by_messages"] == sorted(seen["by_messages"], reverse=True)
    assert seen["by_label"] == sorted(seen["by_label"], key=str.lower) or seen["by_label"] == sorted(seen["by_label"])
    assert seen["drawn"] > 50  # the line of the messages/s chart, in its colour
    tree = seen["tree"]
    at = tree.index([skypy.address(sup), 0])
    assert tree[at + 1] == [skypy.address(child), 1]
    assert screenshot.stat().st_size > 10_000
