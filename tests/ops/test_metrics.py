"""GET /metrics: the node's figures in Prometheus' text format, read back with prometheus-client's own parser."""

from __future__ import annotations

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import skypy
from skypy import cluster, http
from skypy.ops import metrics
from tests.helpers.web import curl, start_web_console


async def scrape(base: str) -> dict[str, list[Sample]]:
    """Every sample /metrics shows, by metric family, parsed as Prometheus would."""
    text = await curl(f"{base}/metrics")
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The value of the one sample named `name` with `labels` among its labels."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, f"{len(found)} samples {name}{labels}"
    return found[0]


async def echo() -> None:
    skypy.dispatch("lua", lambda session, source, x: skypy.ret(x))


async def test_metrics_parse_as_prometheus_text_with_every_family_the_node_exports(node):
    base = await start_web_console(node)
    families = await scrape(base)
    for name in (
        "skypy_messages", "skypy_mailbox_length", "skypy_service_cpu_seconds", "skypy_services", "skypy_calls_failed",
        "skypy_call_duration_seconds", "skypy_sockets_open", "skypy_cluster_link_up", "skypy_dead_letters",
        "process_resident_memory_bytes", "process_cpu_seconds",
    ):
        assert name in families
    assert value(families["skypy_services"], "skypy_services", service=".logger", label="logger") == 1
    # The web page's own listening socket at least.
    assert value(families["skypy_sockets_open"], "skypy_sockets_open") >= 1


async def test_messages_of_exited_services_stay_counted_under_their_label(node):
    base = await start_web_console(node)
    workers = [await node.newservice(echo) for _ in range(3)]
    for worker in workers:
        for n in range(5):
            await node.call(worker, "lua", n)
    for worker in workers:
        await node.kill(worker)
    families = await scrape(base)
    label = "echo"
    assert value(families["skypy_messages"], "skypy_messages_total", label=label) == 15
    # One series for the label, not one per service that had it.
    assert len([s for s in families["skypy_messages"] if s.labels["label"] == label]) == 1
    assert not [s for s in families["skypy_services"] if s.labels["label"] == label]


async def test_call_durations_are_a_histogram_by_callee_label_of_one_call_in_every_sample(node):
    base = await start_web_console(node)
    callee = await node.newservice(echo)
    calls = 3 * metrics.CALL_SAMPLE
    for n in range(calls):
        await node.call(callee, "lua", n)
    samples = (await scrape(base))["skypy_call_duration_seconds"]
    # Three calls were timed, each counting for CALL_SAMPLE of them.
    assert value(samples, "skypy_call_duration_seconds_count", label="echo") == calls
    assert value(samples, "skypy_call_duration_seconds_bucket", label="echo", le="+Inf") == calls
    assert 0 < value(samples, "skypy_call_duration_seconds_sum", label="echo") < calls


async def test_failed_calls_are_counted_by_reason(node):
    base = await start_web_console(node)

    async def slow() -> None:
        async def wait(session: int, source: int) -> None:
            await skypy.sleep(60)

        skypy.dispatch("lua", wait)

    async def failing() -> None:
        skypy.dispatch("lua", lambda session, source: 1 / 0)

    with pytest.raises(skypy.CallError):
        await node.call(0x00FFFFFF, "lua")
    with pytest.raises(skypy.CallError):
        await node.call(await node.newservice(failing), "lua")
    node.crashes.clear()  # the ZeroDivisionError, on purpose
    with pytest.raises(trio.TooSlowError):
        await node.call(await node.newservice(slow), "lua", timeout=0.05)
    samples = (await scrape(base))["skypy_calls_failed"]
    for reason in ("invalid_address", "error", "timeout"):
        assert value(samples, "skypy_calls_failed_total", reason=reason) == 1


async def test_messages_to_dead_addresses_are_dead_letters(node):
    base = await start_web_console(node)
    gone = await node.newservice(echo)
    await node.kill(gone)
    for _ in range(3):
        node.send(gone, "lua", 1)
    assert value((await scrape(base))["skypy_dead_letters"], "skypy_dead_letters_total") >= 3


async def test_a_cluster_link_is_up_once_connected_and_a_node_marked_down_is_not(node):
    base = await start_web_console(node)
    registered: list[int] = []

    async def serve() -> None:
        host, port = await cluster.open(0)
        cluster.reload({"self": f"{host}:{port}", "gone": False})
        cluster.register("echo", await skypy.newservice(echo))
        registered.append(port)

    await node.newservice(serve)
    await node.call(await node.newservice(caller), "lua")
    samples = (await scrape(base))["skypy_cluster_link_up"]
    assert value(samples, "skypy_cluster_link_up", node="self") == 1
    assert value(samples, "skypy_cluster_link_up", node="gone") == 0


async def caller() -> None:
    async def call_self(session: int, source: int) -> None:
        skypy.ret(await cluster.call("self", "@echo", 1))

    skypy.dispatch("lua", call_self)


async def test_metrics_come_with_prometheus_text_content_type(node):
    base = await start_web_console(node)
    answer = await http.request("GET", f"{base}/metrics")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
