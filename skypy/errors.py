"""The exceptions skypy raises; each names the address, key or id involved."""

from __future__ import annotations

__all__ = [
    "CallError", "ConfigError", "Overloaded", "ResponseError", "ServiceExit", "ServiceNotFound", "SkypyError",
    "SocketClosed", "SocketError", "StartError",
]


class SkypyError(Exception):
    """Base class of every error skypy raises on purpose."""


class CallError(SkypyError):
    """A `call` failed: the callee is unknown or gone, raised, exited or never answered."""


class ServiceNotFound(CallError):
    """No service answers to this address or name."""


class Overloaded(CallError):
    """A call was refused at once: the callee's mailbox is at its `mailbox_limit`."""


class ResponseError(SkypyError):
    """A request was answered twice, or answered where there is nothing to answer."""


class ConfigError(SkypyError):
    """A config file is unreadable or wrong; the message names the file and the key."""


class StartError(SkypyError):
    """A node could not start: its logger, debug console, cluster port or start service failed.

    The message names what failed and why, in one line (the service's own
    traceback is in the log); `skypy run` prints it and exits with status 1.
    """


class ServiceExit(BaseException):
    """Raised by `skypy.exit()` to unwind the calling coroutine of a service that ended.

    A BaseException, like SystemExit, so an `except Exception` in service code
    does not keep a dead service running.
    """


class SocketError(SkypyError):
    """A socket request failed: the id is unknown or dead, or connecting or binding failed."""


class SocketClosed(SkypyError):
    """The socket closed before a read was satisfied; `.rest` holds the bytes left unread."""

    def __init__(self, message: str, rest: bytes = b"") -> None:
        super().__init__(message)
        self.rest = rest
