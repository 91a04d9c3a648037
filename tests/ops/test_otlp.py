"""[trace] otlp: each trace hop becomes an OpenTelemetry span, sent to an OTLP/HTTP collector
(here one the test serves), and a node without it imports nothing of OpenTelemetry."""

from __future__ import annotations

import functools
import subprocess
import sys

import h11
import pytest
import trio

import skypy
from skypy._core.config import build

TIMEOUT = 10.0


class Collector:
    """An OTLP/HTTP collector reduced to what the test needs: it keeps each POSTed body and answers 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes]] = []
        self.port = 0

    async def serve(self, nursery: trio.Nursery) -> None:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, self._connection, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]

    async def _connection(self, stream: trio.SocketStream) -> None:
        connection = h11.Connection(h11.SERVER)
        target, body = "", b""
        async with stream:
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await stream.receive_some())
                elif isinstance(event, h11.Request):
                    target = event.target.decode()
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    self.posts.append((target, body))
                    headers = [("content-type", "application/x-protobuf"), ("content-length", "0")]
                    answer = h11.Response(status_code=200, headers=headers)
                    await stream.send_all(connection.send(answer) + connection.send(h11.EndOfMessage()))
                    connection.start_next_cycle()
                    target, body = "", b""
                elif isinstance(event, h11.ConnectionClosed):
                    return


async def test_trace_hops_reach_the_collector_as_spans_of_one_trace():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    collector = Collector()
    async with trio.open_nursery() as nursery:
        await collector.serve(nursery)
        url = f"http://127.0.0.1:{collector.port}/v1/traces"
        async with skypy.open_node(trace={"otlp": url}) as node:
            async def leaf() -> None:
                skypy.dispatch("lua", lambda session, source: skypy.ret())

            target = await node.newservice(leaf)

            async def front() -> None:
                async def handle(session: int, source: int) -> None:
                    skypy.trace("order-9")
                    await skypy.call(target, "lua")
                    skypy.ret()

                skypy.dispatch("lua", handle)

            await node.call(await node.newservice(front), "lua")
            with trio.fail_after(TIMEOUT):
                await trio.to_thread.run_sync(node.node.extensions["otlp"].flush)
        nursery.cancel_scope.cancel()
    spans = []
    for target_path, body in collector.posts:
        assert target_path == "/v1/traces"
        request = ExportTraceServiceRequest.FromString(body)
        spans += [span for resource in request.resource_spans for scope in resource.scope_spans for span in scope.spans]
    assert [span.name for span in spans] == ["begin", f"call {skypy.address(target)}"]
    assert len({span.trace_id for span in spans}) == 1
    attributes = {kv.key: kv.value.string_value for kv in spans[1].attributes}
    assert attributes["skypy.trace"] == "order-9"


def test_a_node_without_otlp_imports_nothing_of_opentelemetry():
    program = (
        "import sys, trio, skypy\n"
        "async def main():\n"
        "    async with skypy.open_node() as node:\n"
        "        pass\n"
        "trio.run(main)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_otlp_must_be_an_http_url():
    with pytest.raises(skypy.ConfigError, match=r"key 'trace.otlp' must be the URL of an OTLP/HTTP collector"):
        build("test", {"trace": {"otlp": "collector:4318"}})
