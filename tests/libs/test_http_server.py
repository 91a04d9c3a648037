"""skypy.http's server on real connections: curl, raw sockets, and the limits and timeouts."""

import json
import re

import pytest
import trio

import skypy
from skypy import http, socket
from skypy.testing import wait_until
from tests.helpers.services import write_service
from tests.helpers.web import TIMEOUT, curl, exchange, read_to_eof, receive_until, start_server


def make_app() -> http.Router:
    app = http.Router()

    @app.get("/users/{id}")
    async def user(req: http.Request) -> http.Response:
        return http.json({"id": req.params["id"], "q": req.query})

    @app.post("/echo")
    async def echo(req: http.Request) -> http.Response:
        return http.Response(200, {"content-type": "application/octet-stream"}, req.body)

    @app.get("/client")
    async def client(req: http.Request) -> http.Response:
        return http.text(str(req.client[1]))

    @app.get("/boom")
    async def boom(req: http.Request) -> http.Response:
        raise RuntimeError("the handler broke")

    @app.get("/stream")
    async def stream(req: http.Request) -> http.Response:
        async def parts():
            for i in range(3):
                yield f"part {i}\n".encode()

        return http.Response(200, {"content-type": "text/plain"}, parts())

    return app


@pytest.fixture
async def server(node):
    """The test app, served on a free port: its port."""
    return (await start_server(node, make_app()))[1]


async def test_curl_gets_a_routed_json_answer(server):
    out = await curl(f"http://127.0.0.1:{server}/users/7?tab=a")
    assert json.loads(out) == {"id": "7", "q": {"tab": "a"}}


async def test_curl_sends_a_chunked_body_and_gets_it_back(server):
    out = await curl("-H", "Transfer-Encoding: chunked", "--data-binary", "chunked body", f"http://127.0.0.1:{server}/echo")
    assert out == "chunked body"


async def test_curl_head_gets_the_headers_and_no_body(server):
    out = await curl("--head", f"http://127.0.0.1:{server}/users/1")
    assert out.startswith("HTTP/1.1 200 OK\r\n") and "content-length: 17" in out and out.endswith("\r\n\r\n")


async def test_curl_reuses_one_keep_alive_connection(server):
    out = await curl(f"http://127.0.0.1:{server}/client", "--next", f"http://127.0.0.1:{server}/client")
    first, second = out[: len(out) // 2], out[len(out) // 2 :]
    assert first == second


async def test_a_streamed_response_is_chunked(server):
    out = await curl("--raw", "--include", f"http://127.0.0.1:{server}/stream")
    assert "Transfer-Encoding: chunked" in out and out.endswith("7\r\npart 2\n\r\n0\r\n\r\n")


async def test_pipelined_requests_are_answered_in_order(server):
    requests = b"".join(f"GET /users/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3))
    out = await exchange(server, requests + b"GET /users/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert re.findall(rb'"id":"(\d)"', out) == [b"0", b"1", b"2", b"3"]


async def test_expect_100_continue_is_answered_before_the_body_is_sent(server):
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream("127.0.0.1", server)
        async with stream:
            await stream.send_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            assert (await receive_until(stream, b"\r\n\r\n")).startswith(b"HTTP/1.1 100 ")
            await stream.send_all(b"body")
            assert (await receive_until(stream, b"body")).startswith(b"HTTP/1.1 200 OK")


async def test_a_handler_that_raises_gives_500_a_log_line_and_keeps_the_connection(node, server):
    then = b"GET /users/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = await exchange(server, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n" + then)
    assert out.startswith(b"HTTP/1.1 500 Internal Server Error") and b'"id":"2"' in out
    assert "RuntimeError: the handler broke" in await node.wait_for_log("http: GET /boom: handler raised")


async def test_a_malformed_request_line_is_400_and_the_connection_closes(server):
    out = await exchange(server, b"HELLO THERE\r\n\r\nGET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 Bad Request") and b'"id"' not in out


async def test_a_1_gib_declared_body_is_413_without_reading_it(server):
    # No byte of the body is sent: the answer must come from the head alone.
    out = await exchange(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\nExpect: 100-continue\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413 Content Too Large") or out.startswith(b"HTTP/1.1 413 Request Entity Too Large")


async def test_a_slowloris_head_is_timed_out_with_408(node):
    _, port = await start_server(node, make_app(), limits=http.Limits(header_timeout=0.3))
    head = b"GET /users/1 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000

    async def trickle(stream: trio.SocketStream) -> None:
        # A byte every 20 ms: the whole head would take 20 s.
        for byte in head:
            await stream.send_all(bytes([byte]))
            await trio.sleep(0.02)

    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle, stream)
            out = await read_to_eof(stream)
            nursery.cancel_scope.cancel()
    assert out.startswith(b"HTTP/1.1 408 Request Timeout")


async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(node):
    _, port = await start_server(node, make_app(), limits=http.Limits(idle_timeout=0.3))
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        out = await read_to_eof(stream)  # the answer, then the server's close
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"}")


async def test_a_handler_slower_than_the_timeouts_still_answers(node):
    app = http.Router()

    @app.get("/slow")
    async def slow(req: http.Request) -> http.Response:
        await skypy.sleep(0.5)  # a handler taking longer than every timeout of the connection
        return http.text("done")

    _, port = await start_server(node, app, limits=http.Limits(header_timeout=0.1, idle_timeout=0.1))
    out = await exchange(port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"done")


async def test_a_websocket_route_answers_a_plain_get_with_426(node):
    app = http.Router()

    @app.websocket("/ws")
    async def ws(ws) -> None:
        pass

    _, port = await start_server(node, app)
    assert (await curl("--include", f"http://127.0.0.1:{port}/ws")).startswith("HTTP/1.1 426 ")


async def test_http_connections_show_in_netstat(node, server):
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream("127.0.0.1", server)
        async with stream:
            await stream.send_all(b"GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n")
            await receive_until(stream, b"}")
            peer = stream.socket.getsockname()
            assert any(entry["address"] == tuple(peer) and entry["read"] > 0 for entry in socket.info())


# --- agents ----------------------------------------------------------------------

AGENT = '''
import skypy
from skypy import http

app = http.Router()


@app.get("/who")
async def who(req):
    return http.text(skypy.address(skypy.self()))


main = http.agent(app)
'''


async def test_agent_mode_serves_each_connection_in_a_new_agent_that_exits_after_it(node, tmp_path):
    write_service(tmp_path, "webagent", AGENT)
    _, port = await start_server(node, agent="webagent")
    first = await curl(f"http://127.0.0.1:{port}/who")
    second = await curl(f"http://127.0.0.1:{port}/who")
    assert first != second
    # Each agent exits once its connection has closed.
    await wait_until(lambda: {(int(a[1:], 16), "KILL self") for a in (first, second)} <= set(node.log_lines))


async def test_agent_mode_with_a_pool_hands_connections_to_its_agents_in_turn(node, tmp_path):
    write_service(tmp_path, "webagent", AGENT)
    _, port = await start_server(node, agent="webagent", agents=2)
    answers = [await curl(f"http://127.0.0.1:{port}/who") for _ in range(4)]
    assert answers[0] == answers[2] != answers[1] == answers[3]


async def test_a_connection_no_agent_can_take_is_closed_and_logged(node):
    _, port = await start_server(node, agent="no_such_agent")
    assert await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    await node.wait_for_log("http: no agent for 127.0.0.1:")


# --- static files ----------------------------------------------------------------


@pytest.fixture
async def site(node, tmp_path):
    root = tmp_path / "site"
    (root / "css").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "css" / "a.css").write_text("h1 {}")
    (root / "app.js").write_text("let x = 1;")
    (tmp_path / "secret.txt").write_text("not for the web")
    app = http.Router()
    app.mount("/", http.static(root))
    return (await start_server(node, app))[1]


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/", "text/html; charset=utf-8"), ("/css/a.css", "text/css; charset=utf-8"), ("/app.js", "text/javascript; charset=utf-8")],
)
async def test_static_files_are_served_with_their_content_type(site, path, kind):
    out = await curl("--include", f"http://127.0.0.1:{site}{path}")
    assert out.startswith("HTTP/1.1 200 OK") and f"content-type: {kind}\r\n" in out


@pytest.mark.parametrize("path", ["/../secret.txt", "/css/../../secret.txt", "/%2e%2e/secret.txt", "/missing.html"])
async def test_static_files_never_escape_the_folder(site, path):
    out = await curl("--include", "--path-as-is", f"http://127.0.0.1:{site}{path}")
    assert out.startswith("HTTP/1.1 404 ") and "not for the web" not in out
