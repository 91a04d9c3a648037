"""Trace hops as OpenTelemetry spans, sent to an OTLP/HTTP collector: ``[trace] otlp = URL``.

Each hop (skypy.trace) becomes a span named for it ("call :0000000b"),
at the moment it is made, with the tag, the address and the node in its
attributes. All the spans of one tag share one trace id and one parent,
both made from the tag, so a collector puts the hops of every node the
request crossed in one trace without the nodes telling each other ids.
opentelemetry-sdk and its OTLP/HTTP exporter (``pip install
'skypy[otlp]'``) are imported only when a node asks for this: a node
without ``[trace] otlp`` imports nothing of them.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from .._api.tracing import Hop, TraceLog
from .._core.message import address
from .._core.node import Node
from ..errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["SpanExport"]


class SpanExport:
    """The node's hops, exported as spans through a batch processor (a thread of its own)."""

    def __init__(self, node: Node, endpoint: str) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise ConfigError(
                f"[trace] otlp = {endpoint!r} needs opentelemetry-sdk and its OTLP/HTTP exporter:"
                f" pip install 'skypy[otlp]' ({exc})"
            ) from None
        self.node = node
        where = node.config.node or f"harbor {node.harbor}"
        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": "skypy", "skypy.node": where}), shutdown_on_exit=False
        )
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self.tracer = self.provider.get_tracer("skypy")
        self.where = where
        TraceLog.of(node).listeners.append(self.hop)

    def hop(self, hop: Hop) -> None:
        """One span for `hop`, under its tag's trace."""
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

        digest = hashlib.sha256(hop.tag.encode()).digest()
        parent = SpanContext(
            int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:24], "big") or 1,
            is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        now = time.time_ns()
        span = self.tracer.start_span(
            hop.text, context=set_span_in_context(NonRecordingSpan(parent)), start_time=now,
            attributes={"skypy.trace": hop.tag, "skypy.address": address(hop.source), "skypy.node": self.where},
        )
        span.end(end_time=now)

    def flush(self) -> None:
        """Send what is batched, waiting for it (blocking: from a thread, not the node's)."""
        self.provider.force_flush()

    def shutdown(self) -> None:
        """Send what is left and stop the exporter's thread (blocking, as `flush`)."""
        TraceLog.of(self.node).listeners.remove(self.hop)
        self.provider.shutdown()
