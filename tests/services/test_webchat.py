"""The chat lobby on the web: WebSocket clients and TCP clients in one lobby, and the page in a real browser."""

import re
import shutil

import pytest
import trio

from skypy import websocket
from tests.helpers.chat import next_of
from tests.helpers.web import TIMEOUT, curl, start_webchat, title_served_by_skypy_run


@pytest.fixture
async def web(node, lobby):
    """The web chat in front of the TCP lobby's lobby: its address."""
    return await start_webchat(node, lobby.watchdog)


async def web_login(web, name: str) -> websocket.WebSocket:
    ws = await websocket.connect(f"ws://{web[0]}:{web[1]}/chat")
    ws.send(f"login {name}")
    assert await ws.receive() == f"joined {name}"
    return ws


async def next_ws(ws: websocket.WebSocket, kind: str) -> str:
    """The next line starting with `kind`, skipping the others."""
    with trio.fail_after(TIMEOUT):
        while True:
            line = await ws.receive()
            if line.split(" ", 1)[0] == kind:
                return line


async def test_web_and_terminal_users_see_each_other_join_and_talk(lobby, web):
    tcp = await lobby.login("terminal")
    browser = await web_login(web, "browser")
    assert await next_of(tcp, "joined") == "joined browser"
    tcp_line, web_line = "said terminal hello", "said browser hi"
    await tcp.send_packet("say hello")
    browser.send("say hi")
    assert [await next_of(tcp, "said"), await next_of(tcp, "said")] == [tcp_line, web_line]
    assert [await next_ws(browser, "said"), await next_ws(browser, "said")] == [tcp_line, web_line]


async def test_who_lists_web_and_terminal_users(lobby, web):
    terminal = await lobby.login("terminal")  # noqa: F841 (held, so it stays in)
    browser = await web_login(web, "browser")
    browser.send("who")
    assert await next_ws(browser, "users") == "users browser terminal"


async def test_a_web_user_who_quits_gets_bye_then_the_close_and_the_others_see_left(lobby, web):
    tcp = await lobby.login("terminal")
    browser = await web_login(web, "browser")
    browser.send("quit")
    assert await next_ws(browser, "bye") == "bye"
    with pytest.raises(websocket.Closed), trio.fail_after(TIMEOUT):
        await browser.receive()
    assert await next_of(tcp, "left") == "left browser"


async def test_a_web_user_who_vanishes_leaves_the_lobby(lobby, web):
    tcp = await lobby.login("terminal")
    browser = await web_login(web, "browser")
    await browser.close()
    assert await next_of(tcp, "left") == "left browser"


async def test_web_commands_get_the_tcp_errors(web):
    browser = await websocket.connect(f"ws://{web[0]}:{web[1]}/chat")
    browser.send("say too early")
    assert await browser.receive() == "error not logged in"


async def test_the_page_loads_nothing_from_elsewhere(web):
    page = await curl(f"http://{web[0]}:{web[1]}/")
    assert "<title>skypy chat</title>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)


async def test_skypy_run_serves_the_web_chat_of_the_default_config(default_config, tmp_path):
    assert await title_served_by_skypy_run(default_config, tmp_path, "Web chat at http://127.0.0.1:") == "skypy chat"


# --- in a real browser ----------------------------------------------------------------

BROWSER_LINES = ["said alice hello from alice", "said bob hello from bob", "said carol hello from carol"]


def browse(url: str) -> list[list[str]]:
    """Two pages join as alice and bob and each says a line; the said lines each page shows, once it shows three."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        try:
            pages = []
            for name in ("alice", "bob"):
                page = browser.new_page()
                page.set_default_timeout(TIMEOUT * 1000)
                page.goto(url)
                page.fill("#name", name)
                page.click("#join")
                page.wait_for_selector("#say:not([hidden])")
                pages.append(page)
            pages[0].wait_for_function("document.querySelectorAll('#users li').length === 3")
            for page, name in zip(pages, ("alice", "bob"), strict=True):
                page.fill("#text", f"hello from {name}")
                page.click("#send")
            seen = []
            for page in pages:
                page.wait_for_function("document.querySelectorAll('#log li.said').length === 3")
                seen.append(page.locator("#log li.said").all_inner_texts())
            pages[0].click("#leave")
            pages[0].wait_for_selector("#login:not([hidden])")
            return seen
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run installs it)")
async def test_two_browser_pages_and_a_terminal_client_chat_in_one_order(lobby, web):
    carol = await lobby.login("carol")
    async with trio.open_nursery() as nursery:
        seen: list[list[str]] = []

        async def run_browser() -> None:
            seen.extend(await trio.to_thread.run_sync(browse, f"http://{web[0]}:{web[1]}/"))

        nursery.start_soon(run_browser)
        assert await next_of(carol, "joined") == "joined alice"
        assert await next_of(carol, "joined") == "joined bob"
        await carol.send_packet("say hello from carol")
        terminal = [await next_of(carol, "said") for _ in range(3)]
    assert sorted(terminal) == BROWSER_LINES
    # Each page shows "NAME: TEXT" for each "said NAME TEXT", in the order the terminal got them.
    shown = [re.sub(r"^said (\S+) ", r"\1: ", line) for line in terminal]
    assert seen == [shown, shown]
    assert await next_of(carol, "left") == "left alice"
