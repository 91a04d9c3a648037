"""Per-service message logs: the console's ``logon ADDR`` writes every message the service receives.

To ``<logpath>/<handle as %08x>.log``, as skynet names it, one line a
message: ``:source ptype session time payload`` (time in seconds since the
node started). Logging sets the service's `message_hook`, which the core
calls with each message the service takes.
"""

from __future__ import annotations

import time
from typing import IO

import trio

from .._core.message import RawMessage
from .._core.service import Service

__all__ = ["MessageLog", "logoff", "logon"]

class MessageLog:
    """The open log file of one service."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.path = svc.node.config.logpath / f"{svc.handle:08x}.log"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file: IO[str] = self.path.open("a", encoding="utf-8", buffering=1)
        self.file.write(f"open time: {time.time():.2f}\n")

    def write(self, msg: RawMessage) -> None:
        """One line for `msg`, as it is taken."""
        source, session, ptype, payload = msg
        elapsed = trio.current_time() - self.svc.node.started_at
        self.file.write(f":{source:08x} {ptype} {session} {elapsed:.2f} {payload!r}\n")

    def close(self) -> None:
        """Mark the end in the file and close it."""
        self.file.write(f"close time: {time.time():.2f}\n")
        self.file.close()


def logon(svc: Service) -> MessageLog:
    """Start logging the messages `svc` receives; the log it writes to (the same one if already on)."""
    logs: dict[int, MessageLog] = svc.node.extensions.setdefault("msglog", {})
    log = logs.get(svc.handle)
    if log is None:
        log = logs[svc.handle] = MessageLog(svc)
        svc.message_hook = log.write
        svc.exit_hooks.append(lambda: logoff(svc))
    return log


def logoff(svc: Service) -> bool:
    """Stop logging `svc`'s messages; False if they were not being logged."""
    log = svc.node.extensions.get("msglog", {}).pop(svc.handle, None)
    if log is None:
        return False
    svc.message_hook = None
    log.close()
    return True
