"""skypy.http's client: answers, keep-alive reuse, timeouts, errors that name the host, redirects."""

import inspect

import pytest

from skypy import http, socket
from skypy.testing import wait_until
from tests.helpers.web import start_server


def make_app() -> http.Router:
    app = http.Router()

    @app.get("/client")
    async def client(req: http.Request) -> http.Response:
        return http.text(str(req.client[1]), headers={"x-test": "yes"})

    @app.post("/echo")
    async def echo(req: http.Request) -> http.Response:
        return http.Response(201, {}, req.body)

    @app.get("/moved")
    async def moved(req: http.Request) -> http.Response:
        return http.Response(302, {"location": "/client"})

    return app


@pytest.fixture
async def base(node):
    host, port = await start_server(node, make_app())
    return f"http://{host}:{port}"


async def test_a_request_gets_the_status_headers_and_body(base):
    answer = await http.request("POST", f"{base}/echo", body=b"payload")
    assert (answer.status, answer.body) == (201, b"payload")
    assert answer.headers["content-length"] == "7"


async def test_keep_alive_reuses_one_connection_per_host(base):
    first = await http.request("GET", f"{base}/client")
    second = await http.request("GET", f"{base}/client")
    assert first.body == second.body  # the same client port: the same connection
    assert first.headers["x-test"] == "yes"


async def test_a_connection_the_server_closed_while_idle_is_replaced(node):
    host, port = await start_server(node, make_app(), limits=http.Limits(idle_timeout=0.3))
    first = await http.request("GET", f"http://{host}:{port}/client")
    # Wait for the server to close the idle connection (its port leaves netstat).
    await wait_until(lambda: all(entry["address"] != ("127.0.0.1", int(first.body)) for entry in socket.info()))
    second = await http.request("GET", f"http://{host}:{port}/client")
    assert second.status == 200 and second.body != first.body


def test_the_default_timeout_is_ten_seconds():
    assert inspect.signature(http.request).parameters["timeout"].default == http.DEFAULT_TIMEOUT == 10.0


async def test_a_server_that_never_answers_times_out_naming_the_host(node):
    silent, host, port = await socket.listen("127.0.0.1", 0)
    await socket.start(silent, lambda id, address: None)  # accepts, never reads nor answers
    with pytest.raises(http.RequestTimeout, match=f"{host}:{port}"):
        await http.request("GET", f"http://{host}:{port}/", timeout=0.2)


async def test_a_refused_connection_names_the_host(node):
    unused, host, port = await socket.listen("127.0.0.1", 0)
    await socket.close(unused)
    with pytest.raises(http.RequestError, match=f"{host}:{port}"):
        await http.request("GET", f"http://{host}:{port}/")


async def test_redirects_are_not_followed_by_default(base):
    answer = await http.request("GET", f"{base}/moved")
    assert (answer.status, answer.headers["location"]) == (302, "/client")


async def test_redirects_are_followed_when_asked(base):
    answer = await http.request("GET", f"{base}/moved", follow_redirects=True)
    assert answer.status == 200 and answer.body.isdigit()
