"""A node for a test: its log lines can be awaited, and a service crash fails the test."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import attrs
import trio

from .._core.config import Config
from .._core.message import address
from .._core.service import Service
from ..embed import RunningNode, open_node

DEFAULT_TIMEOUT = 10.0


@attrs.frozen
class Crash:
    """A service raised and nobody caught it: where, in what, and the exception."""

    service: str  # its address, ":0000000a"
    label: str  # what was launched: a service name, or a function's name
    what: str  # "handler", "start", "command 'get'", …
    exception: BaseException

    def __str__(self) -> str:
        return f"{self.service} ({self.label}) {self.what} raised {type(self.exception).__name__}: {self.exception}"


class NodeUnderTest(RunningNode):
    """A RunningNode that keeps its log and its crashes for the test.

    `crashes` lists every unhandled service exception; any still listed when
    the node closes fails the test, so a test that provokes one on purpose
    checks it and removes it (``crash = node.crashes.pop()``).
    """

    def __init__(self, running: RunningNode) -> None:
        super().__init__(running.node, running.host)
        self.log_lines: list[tuple[int, str]] = []
        self.crashes: list[Crash] = []
        self._logged = trio.lowlevel.ParkingLot()
        self.add_log_hook(self._log)
        self.add_crash_hook(self._crash)

    def _log(self, source: int, text: str) -> None:
        self.log_lines.append((source, text))
        self._logged.unpark_all()

    def _crash(self, svc: Service, what: str, exc: BaseException) -> None:
        self.crashes.append(Crash(address(svc.handle), svc.label, what, exc))

    async def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = DEFAULT_TIMEOUT) -> str:
        """The first line logged since the node started that contains `pattern`, waiting
        for it if need be. A str is plain text, found anywhere in the line
        (``"client 3 gone"``); for a regular expression pass a compiled one
        (``re.compile(r"client \\d+ gone")``), searched for in each line."""
        seen = 0
        with trio.move_on_after(timeout):
            while True:
                for _, text in self.log_lines[seen:]:
                    if pattern.search(text) if isinstance(pattern, re.Pattern) else pattern in text:
                        return text
                seen = len(self.log_lines)
                await self._logged.park()
        last = "\n".join(text for _, text in self.log_lines[-10:])
        if isinstance(pattern, re.Pattern):
            wanted = f"no line matching the regular expression {pattern.pattern!r}"
        else:
            wanted = (
                f"no line containing the text {pattern!r} (a str is plain text, not a regular "
                "expression: pass re.compile(...) for one)"
            )
        raise AssertionError(f"{wanted} was logged within {timeout} s; the last lines:\n{last}")

    def check_crashes(self) -> None:
        """AssertionError naming every crash still listed."""
        if self.crashes:
            raise AssertionError(
                f"{len(self.crashes)} service crash(es) during the test:\n"
                + "\n".join(f"  {crash}" for crash in self.crashes)
            )


@asynccontextmanager
async def open_test_node(config: Config | str | Path | None = None, **overrides: Any) -> AsyncIterator[NodeUnderTest]:
    """`skypy.open_node` for tests: watching from before the first service starts,
    and raising AssertionError on leaving if a service crashed."""
    made: list[NodeUnderTest] = []
    async with open_node(config, on_start=lambda running: made.append(NodeUnderTest(running)), **overrides):
        yield made[0]
    made[0].check_crashes()
