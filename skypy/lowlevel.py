"""skypy.lowlevel: the service API that libraries and framework services build on.

Service code rarely needs these; a library that holds state for a service
(sockets, connections) or forwards requests on behalf of others (the
cluster agent) does. Like ``trio.lowlevel``, a thin namespace of explicit
re-exports.
"""

from ._api.lifecycle import on_exit as on_exit
from ._api.messages import post_request as post_request, queue_length as queue_length, wait_answer as wait_answer
from ._api.tracing import traced as traced

__all__ = ["on_exit", "post_request", "queue_length", "traced", "wait_answer"]
