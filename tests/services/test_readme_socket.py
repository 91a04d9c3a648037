"""The socket example in README.md runs as written."""

import re
from pathlib import Path

import trio

README = Path(__file__).parents[2] / "README.md"


async def test_the_readme_socket_example_serves_upper_cased_lines(node, tmp_path):
    section = README.read_text().split("## Sockets: `skypy.socket`", 1)[1]
    (tmp_path / "upper.py").write_text(re.search(r"```python\n(.*?)```", section, re.S).group(1))
    await node.newservice("upper")
    port = int((await node.wait_for_log("listening on")).rsplit(":", 1)[1])
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"hello\nworld\n")
        received = b""
        while received.count(b"\n") < 2:
            received += await stream.receive_some()
        await stream.aclose()
    assert received == b"HELLO\nWORLD\n"
