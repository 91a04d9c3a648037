"""The HTTP and WebSocket examples in README.md run as written."""

import json
import re
import textwrap
from pathlib import Path

from skypy import websocket
from tests.helpers.web import curl

README = Path(__file__).parents[2] / "README.md"


def blocks(section: str) -> list[str]:
    """The python code blocks of README.md's section `section` (its heading's text)."""
    text = README.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, re.S)


async def test_the_readme_http_example_serves_its_routes(node, tmp_path):
    (tmp_path / "hello_web.py").write_text(blocks("HTTP: `skypy.http`")[0])
    await node.newservice("hello_web")
    base = re.search(r"http://\S+/", await node.wait_for_log("serving on http://")).group(0)
    assert json.loads(await curl(f"{base}users/7?tab=a")) == {"id": "7", "tab": "a"}
    assert await curl("--data-binary", "back", f"{base}echo") == "back"


async def test_the_readme_websocket_examples_echo(node, tmp_path):
    server, client = blocks("WebSocket: `skypy.websocket`")[:2]
    (tmp_path / "echo_ws.py").write_text(server)
    await node.newservice("echo_ws")
    port = int(re.search(r":(\d+)/echo", await node.wait_for_log("echo on ws://")).group(1))
    namespace = {"websocket": websocket}
    exec(f"async def run(port):\n{textwrap.indent(client, '    ')}", namespace)
    await namespace["run"](port)  # its own assert checks the echo
