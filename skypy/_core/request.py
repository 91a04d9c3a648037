"""What a coroutine of a service is serving: the request to answer, or a timer to run."""

from __future__ import annotations

from typing import Any, Callable


class ServedRequest:
    """The request a coroutine serves: whom to answer, and whether it has been."""

    __slots__ = ("session", "source", "answered", "ignored", "trace")

    def __init__(self, session: int, source: int) -> None:
        self.session = session
        self.source = source
        self.answered = False
        self.ignored = False
        # The trace tag every send and call this request causes carries (skypy.trace), or None.
        self.trace: str | None = None

    def copy(self) -> ServedRequest:
        """A request like this one, for whoever keeps it past the handler's call."""
        copy = ServedRequest(self.session, self.source)
        copy.answered = self.answered
        copy.ignored = self.ignored
        copy.trace = self.trace
        return copy


class TimeoutCallback:
    """A session that starts a coroutine when its timer fires, instead of waking one."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
