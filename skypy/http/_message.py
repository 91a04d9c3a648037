"""HTTP requests and responses as handlers see them: small attrs records, and helpers that make responses."""

from __future__ import annotations

import json as _json
from typing import Any, AsyncIterable, Awaitable, Callable

import attrs

__all__ = ["Body", "Handler", "Request", "Response", "html", "json", "text"]

# A response body: bytes sent with a Content-Length, or chunks sent as they
# come (chunked to an HTTP/1.1 client, the connection's end to an HTTP/1.0 one).
Body = bytes | AsyncIterable[bytes]


@attrs.define
class Request:
    """One request, its body read in full (within the server's body limit).

    `headers` has lower-case names; a repeated header's values are joined with
    ", ". `params` holds what the route's ``{name}`` segments matched.
    """

    method: str
    path: str
    query: dict[str, str] = attrs.field(factory=dict)
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    params: dict[str, str] = attrs.field(factory=dict)
    target: str = ""  # the request target as sent: path and query, still %-encoded
    client: tuple[str, int] = ("", 0)
    http_version: str = "1.1"

    def json(self) -> Any:
        """The body parsed as JSON (ValueError if it is not)."""
        return _json.loads(self.body)


@attrs.define
class Response:
    """What a handler returns: a status, headers (any case), and a body of bytes or an async iterator of chunks."""

    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    body: Body = b""


Handler = Callable[[Request], Awaitable[Response]]


def text(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A text/plain response in UTF-8."""
    return Response(status, {"content-type": "text/plain; charset=utf-8", **(headers or {})}, body.encode())


def html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A text/html response in UTF-8."""
    return Response(status, {"content-type": "text/html; charset=utf-8", **(headers or {})}, body.encode())


def json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An application/json response of `value`."""
    body = _json.dumps(value, separators=(",", ":")).encode()
    return Response(status, {"content-type": "application/json", **(headers or {})}, body)
