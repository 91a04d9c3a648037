"""The debug console is safe by default: what a web page, a stranger on the network or
an endless line can do to it, on real sockets."""

import pytest
import trio

import skypy
from skypy import socket
from skypy._core.config import build
from skypy.testing import NodeProcess
from tests.helpers.services import echo_service

TOKEN = "s3cret"
CONSOLE = {"port": 0, "greeting_delay": 0.05}
pytestmark = pytest.mark.skypy_config(console=CONSOLE)
with_token = pytest.mark.skypy_config(console={**CONSOLE, "token": TOKEN})


def console_port():
    [listener] = [s for s in socket.info() if s["kind"] == "listen"]
    return listener["address"][1]


async def get(path, host="127.0.0.1", **headers):
    """An HTTP GET to the console: (status line, body)."""
    stream = await trio.open_tcp_stream("127.0.0.1", console_port())
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
    received = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some():
            received += chunk
    head, _, body = received.decode().partition("\r\n\r\n")
    return head.split("\r\n")[0], body


async def tcp_session(*lines):
    """What the console answers a TCP client sending `lines`, until it closes the connection."""
    stream = await trio.open_tcp_stream("127.0.0.1", console_port())
    await stream.send_all(b"".join(line.encode() + b"\n" for line in lines))
    received = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some():
            received += chunk
    return received.decode().splitlines()


async def test_http_for_a_host_that_is_not_loopback_is_refused(node):
    status, body = await get("/ping/.logger", host="evil.example:8000")
    assert status == "HTTP/1.1 403 Forbidden" and "(Host)" in body


async def test_http_with_a_cross_site_origin_is_refused(node):
    status, body = await get("/stat", Origin="http://evil.example")
    assert status == "HTTP/1.1 403 Forbidden" and "Origin: http://evil.example" in body


async def test_http_from_the_consoles_own_origin_is_answered(node):
    status, body = await get("/stat", host="localhost", Origin=f"http://localhost:{console_port()}")
    assert status == "HTTP/1.1 200 OK" and body.endswith("<CMD OK>\n")


async def test_http_without_the_token_runs_no_command_that_changes_the_node(node):
    victim = await node.newservice(echo_service)
    status, body = await get(f"/kill/{skypy.address(victim)}")
    assert status == "HTTP/1.1 403 Forbidden" and "kill changes the node" in body
    assert await node.call(victim, "lua", "still here") == "still here"


@with_token
async def test_http_with_the_token_runs_any_command(node):
    victim = await node.newservice(echo_service)
    status, _ = await get(f"/kill/{skypy.address(victim)}", Authorization=f"Bearer {TOKEN}")
    assert status == "HTTP/1.1 200 OK"
    with pytest.raises(skypy.CallError):
        await node.call(victim, "lua", "gone")


@with_token
async def test_http_with_a_wrong_token_is_refused(node):
    status, _ = await get("/kill/.logger", Authorization="Bearer guess")
    assert status == "HTTP/1.1 403 Forbidden"


@with_token
async def test_tcp_with_a_token_needs_auth_as_the_first_line(node):
    answer = await tcp_session("list")
    assert answer[-2:] == ["authentication required: the first line must be auth TOKEN", "<CMD Error>"]


@with_token
async def test_tcp_after_auth_runs_commands(node):
    stream = await trio.open_tcp_stream("127.0.0.1", console_port())
    await stream.send_all(f"auth {TOKEN}\nping .logger\n".encode())
    received = b""
    with trio.fail_after(5):
        while received.count(b"<CMD OK>") < 2:
            received += await stream.receive_some()
    await stream.aclose()


async def test_a_line_over_64_kib_is_an_error_and_closes_the_connection(node):
    answer = await tcp_session("x" * (65 << 10))
    assert answer[-2:] == ["a line is over 65536 bytes", "<CMD Error>"]


def test_a_console_off_loopback_without_a_token_is_a_config_error():
    with pytest.raises(skypy.ConfigError, match=r"key 'console.host': 0.0.0.0 is not a loopback address"):
        build("my.toml", {"console": {"host": "0.0.0.0", "port": 0}})
    assert build("my.toml", {"console": {"host": "0.0.0.0", "port": 0, "token": TOKEN}}).console is not None


async def test_skypy_run_refuses_a_console_off_loopback_without_a_token_with_status_2(tmp_path):
    (tmp_path / "open.toml").write_text('[console]\nhost = "0.0.0.0"\nport = 0\n')
    node = await NodeProcess.start("run", "open.toml", cwd=tmp_path)
    assert await node.wait() == 2
    [line] = await node.output()
    assert "key 'console.host': 0.0.0.0 is not a loopback address" in line
