"""Prometheus metrics of a node, in the text format that ``GET /metrics`` serves.

Made with prometheus-client: its collector interface, its metric families
and its exposition, so the format is the library's, not ours. Most figures
cost the message path nothing: they are counters the node keeps anyway
(`messages_handled`, `cpu`, the mailbox), read when Prometheus scrapes. The
exceptions are calls, watched through the node's `call_meter`, and retired
services, whose totals are kept per label through the node's
`retire_hooks` so that counters never go down when services come and go.

Timing every call cost a fifth of a call's time (540 ns of 2.8 µs, a
loop of calls measured alone), so one call in CALL_SAMPLE is timed, and counts in
the histogram for CALL_SAMPLE calls, as statsd scales a sampled counter:
its quantiles are those of a uniform sample of calls, and its count grows
as the calls do. Failed calls are all counted.

Series are labelled by a service's local name and launch label, never its
handle: a node starting an agent per connection would otherwise make one
series per connection ever made.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections import defaultdict
from typing import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import socket as skysocket
from .._core.node import Node
from .._core.service import Service
from . import census

__all__ = ["CALL_BUCKETS", "CALL_SAMPLE", "CONTENT_TYPE", "NodeMetrics", "of"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# One call in this many is timed, and counts for this many.
CALL_SAMPLE = 64

# Upper bounds, in seconds, of skypy_call_duration_seconds' buckets: a call
# within a node takes microseconds, across a cluster link milliseconds.
CALL_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

ServiceKey = tuple[str, str]  # (local name or "", label)


class _Histogram:
    """Call durations of one callee label: a count per bucket (not cumulative), and their sum.

    Not prometheus-client's Histogram, whose `observe` takes a lock and walks
    every bucket, and cannot weigh a sample: this costs one bisect.
    """

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(CALL_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float, weight: int) -> None:
        self.counts[bisect_left(CALL_BUCKETS, seconds)] += weight
        self.sum += seconds * weight

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs, as the exposition wants them."""
        out, total = [], 0
        for bound, count in zip((*map(str, CALL_BUCKETS), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


class NodeMetrics(Collector):
    """The metrics of one node: a prometheus-client collector over the node's tables, and its call meter."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # Totals of services already retired, so the counters of their label keep them.
        self.retired_messages: dict[ServiceKey, int] = defaultdict(int)
        self.retired_cpu: dict[ServiceKey, float] = defaultdict(float)
        self.calls: dict[str, _Histogram] = defaultdict(_Histogram)
        self.calls_failed: dict[str, int] = defaultdict(int)
        # The call meter's `due`: True once in CALL_SAMPLE calls. A cycle's
        # __next__ is C: asked on every call, it costs half a Python method.
        self.due = itertools.cycle([False] * (CALL_SAMPLE - 1) + [True]).__next__
        # A registry of the node's own, not the process-wide default: a
        # process may run several nodes (tests do), each with its own page.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        node.retire_hooks.append(self._retired)
        node.call_meter = self

    def _retired(self, svc: Service) -> None:
        key = (census.names_by_handle(self.node).get(svc.handle, ""), svc.label)
        self.retired_messages[key] += svc.messages_handled
        self.retired_cpu[key] += svc.cpu

    def timed(self, label: str | None, seconds: float) -> None:
        if label is not None:
            self.calls[label].observe(seconds, CALL_SAMPLE)

    def failed(self, reason: str) -> None:
        self.calls_failed[reason] += 1

    def exposition(self) -> bytes:
        """Every metric, in Prometheus' text format (from a service of the node: sockets are read through it)."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        node = self.node
        names = census.names_by_handle(node)
        messages: dict[ServiceKey, float] = defaultdict(float, self.retired_messages)
        cpu: dict[ServiceKey, float] = defaultdict(float, self.retired_cpu)
        mailbox: dict[ServiceKey, float] = defaultdict(float)
        count: dict[ServiceKey, float] = defaultdict(float)
        for svc in list(node.services.values()):
            key = (names.get(svc.handle, ""), svc.label)
            messages[key] += svc.messages_handled
            cpu[key] += svc.cpu
            mailbox[key] += len(svc.mailbox)
            count[key] += 1
        yield _family(CounterMetricFamily, "skypy_messages", "Messages services have taken, by name and label", messages)
        yield _family(GaugeMetricFamily, "skypy_mailbox_length", "Messages queued for services, by name and label", mailbox)
        yield _family(
            CounterMetricFamily, "skypy_service_cpu_seconds", "Seconds spent running services' code, by name and label", cpu
        )
        yield _family(GaugeMetricFamily, "skypy_services", "Services running, by name and label", count)
        failed = CounterMetricFamily("skypy_calls_failed", "Calls that raised, by why", labels=["reason"])
        for reason, n in sorted(self.calls_failed.items()):
            failed.add_metric([reason], n)
        yield failed
        durations = HistogramMetricFamily(
            "skypy_call_duration_seconds", "Seconds from a call to its answer, by the callee's label", labels=["label"]
        )
        for label, histogram in sorted(self.calls.items()):
            durations.add_metric([label], histogram.buckets(), histogram.sum)
        yield durations
        open_sockets = skysocket.info()
        yield GaugeMetricFamily("skypy_sockets_open", "Sockets open in the node's socket server", value=len(open_sockets))
        links = GaugeMetricFamily("skypy_cluster_link_up", "1 if the link to a cluster node is connected", labels=["node"])
        for name, state in sorted(census.cluster_links(node, open_sockets).items()):
            links.add_metric([name], 1.0 if state is census.LinkState.CONNECTED else 0.0)
        yield links
        yield CounterMetricFamily(
            "skypy_dead_letters", "Messages to dead or unknown addresses, dropped or refused", value=node.dead_letters.count
        )


def _family(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily], name: str, documentation: str, values: dict[ServiceKey, float]
) -> Metric:
    family = kind(name, documentation, labels=["service", "label"])
    for (service, label), value in sorted(values.items()):
        family.add_metric([service, label], value)
    return family


def of(node: Node) -> NodeMetrics:
    """The node's metrics, counting from the first time they are asked for."""
    return node.extension("metrics", NodeMetrics, node)
