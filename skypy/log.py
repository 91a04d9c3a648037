"""skypy.log: log lines with levels, and a bridge both ways with Python's `logging`.

    skypy.log.debug("cache miss", key)     # dropped unless [log] level = "debug"
    skypy.log.warning("slow peer", peer)
    skypy.error("a line")                  # skynet's call: a line at INFO

Every line goes to the node's logger service, as skynet's do. The logger
writes it in skynet's format (or as JSON with ``[log] format = "json"``) and
also hands it to Python's `logging` as a record of logger ``skypy.<label>``
carrying the service's address in ``skypy_address``, when that logger has
handlers: so logging's handlers, structlog or a JSON formatter can take
skypy's lines. The other way, records that service code emits through
``logging.getLogger(...)`` carry the address of the service that emitted
them (`install_record_factory`, which `open_node` calls).
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any, Callable

from ._api.messages import running
from ._core.config import LOG_LEVELS
from ._core.current import current
from ._core.message import address
from ._core.node import Node

__all__ = [
    "DEBUG", "ERROR", "INFO", "WARNING", "JsonFormatter", "SkynetFormatter",
    "bridge", "debug", "error", "info", "install_record_factory", "record", "warning",
]

DEBUG = logging.DEBUG
INFO = logging.INFO
WARNING = logging.WARNING
ERROR = logging.ERROR


def _threshold(node: Node) -> int:
    """The lowest level this node logs (``[log] level``), read once."""
    return node.extension("log.level", lambda: LOG_LEVELS[node.config.log.get("level", "info")])


def _log(level: int, args: tuple[Any, ...]) -> None:
    svc = running()
    if level >= _threshold(svc.node):
        svc.node.log(svc.handle, " ".join(map(str, args)), level)


def debug(*args: Any) -> None:
    """Log a line from this service at DEBUG: dropped unless ``[log] level = "debug"``."""
    _log(DEBUG, args)


def info(*args: Any) -> None:
    """Log a line from this service at INFO (as ``skypy.error`` does)."""
    _log(INFO, args)


def warning(*args: Any) -> None:
    """Log a line from this service at WARNING."""
    _log(WARNING, args)


def error(*args: Any) -> None:
    """Log a line from this service at ERROR."""
    _log(ERROR, args)


def record(source: int, text: str, level: int, label: str) -> logging.LogRecord:
    """A `logging` record of one skypy line: logger ``skypy.<label>``, the address in ``skypy_address``."""
    rec = logging.LogRecord(f"skypy.{label}", level, "", 0, text, None, None)
    rec.skypy_address = address(source)
    return rec


def bridge(rec: logging.LogRecord) -> None:
    """Hand `rec` to Python's logging, if its logger has handlers that want its level.

    Not otherwise: with no handler configured, logging would print warnings
    a second time on stderr through its last-resort handler.
    """
    logger = logging.getLogger(rec.name)
    if logger.isEnabledFor(rec.levelno) and logger.hasHandlers():
        logger.handle(rec)


class SkynetFormatter(logging.Formatter):
    """skynet's line: ``[:0000000a] text``, after ``dd/mm/yy HH:MM:SS.cc`` when `stamped` (a log file)."""

    def __init__(self, stamped: bool) -> None:
        super().__init__()
        self.stamped = stamped

    def format(self, record: logging.LogRecord) -> str:
        line = f"[{getattr(record, 'skypy_address', None) or address(0)}] {record.getMessage()}"
        if not self.stamped:
            return line
        stamp = datetime.datetime.fromtimestamp(record.created).strftime("%d/%m/%y %H:%M:%S")
        return f"{stamp}.{int(record.created * 100) % 100:02d} {line}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, address, message."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        return json.dumps({
            "time": created.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "address": getattr(record, "skypy_address", None),
            "message": record.getMessage(),
        })


_installed: list[Callable[..., logging.LogRecord]] = []


def install_record_factory() -> None:
    """Make every `logging` record emitted inside a service carry its address (``skypy_address``).

    Process-wide, as logging's record factory is; installed once, over
    whatever factory was there. Records made outside any service get None.
    """
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        rec = previous(*args, **kwargs)
        svc = current.get(None)
        rec.skypy_address = None if svc is None else address(svc.handle)
        return rec

    _installed.append(factory)
    logging.setLogRecordFactory(factory)
