"""The HTTP client: `await http.request(method, url)` over skypy.socket, with keep-alive per host.

Each service keeps its own idle connections per (host, port), since only the
service that started a socket reads it; they are reused while the server
keeps them open, and dropped when the service exits. A request that finds
its reused connection closed by the server before any answer came is sent
once more on a fresh one. Redirects are not followed unless asked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import h11
import trio

from .. import socket
from .._api.lifecycle import on_exit
from .._api.messages import running
from .._weburl import split_url
from ..errors import SkypyError
from ._message import Response

__all__ = ["DEFAULT_TIMEOUT", "RequestError", "RequestTimeout", "request"]

DEFAULT_TIMEOUT = 10.0
MAX_IDLE_PER_HOST = 8
_REDIRECTS = (301, 302, 303, 307, 308)

# service handle -> (host, port) -> idle connection ids, most recent last
_idle: dict[int, dict[tuple[str, int], list[int]]] = {}


class RequestError(SkypyError):
    """A request failed: the connection could not be made or broke, or the answer was not HTTP. Names the host."""


class RequestTimeout(RequestError):
    """No whole answer came within the request's timeout."""


def _pool() -> dict[tuple[str, int], list[int]]:
    handle = running().handle
    pool = _idle.get(handle)
    if pool is None:
        pool = _idle[handle] = {}
        on_exit(lambda: _idle.pop(handle, None))
    return pool


async def request(
    method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
    timeout: float | None = DEFAULT_TIMEOUT, follow_redirects: bool = False, max_body_size: int = 64 << 20,
) -> Response:
    """Send one request and read its whole answer (the body as bytes, headers with lower-case names).

    RequestError names the host when it cannot connect, the connection
    breaks or the answer is not HTTP; RequestTimeout after `timeout`
    seconds (None: no limit). With `follow_redirects`, up to 10 are followed.
    """
    for _ in range(11):
        host, port, target = split_url(url, "http")
        try:
            with trio.fail_after(timeout if timeout is not None else float("inf")):
                response = await _exchange(method, host, port, target, headers or {}, body, max_body_size)
        except trio.TooSlowError:
            raise RequestTimeout(f"http: {method} {url}: no answer from {host}:{port} within {timeout} s") from None
        except RequestError as exc:
            raise RequestError(f"http: {method} {url}: {exc}") from None
        location = response.headers.get("location")
        if not (follow_redirects and response.status in _REDIRECTS and location):
            return response
        url = urljoin(url, location)
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method, body = "GET", b""
    raise RequestError(f"http: {method} {url}: more than 10 redirects")


async def _exchange(
    method: str, host: str, port: int, target: str, headers: dict[str, str], body: bytes, max_body_size: int
) -> Response:
    pool = _pool().setdefault((host, port), [])
    while pool:
        id = pool.pop()
        if socket.disconnected(id) or socket.invalid(id):
            await socket.close(id)
            continue
        response = await _on(id, True, method, host, port, target, headers, body, max_body_size)
        if response is not None:
            return response
    try:
        id = await socket.open(host, port)
    except socket.SocketError as exc:
        raise RequestError(str(exc)) from None
    response = await _on(id, False, method, host, port, target, headers, body, max_body_size)
    assert response is not None
    return response


async def _on(
    id: int, reused: bool, method: str, host: str, port: int, target: str, headers: dict[str, str], body: bytes,
    max_body_size: int,
) -> Response | None:
    """The exchange on connection `id`; None if a reused connection turned out closed before any answer."""
    conn = h11.Connection(h11.CLIENT)
    fields: list[tuple[str, str]] = [("host", f"{host}:{port}" if port != 80 else host)]
    fields += [(k.lower(), v) for k, v in headers.items() if k.lower() != "host"]
    if body or method in ("POST", "PUT", "PATCH"):
        fields.append(("content-length", str(len(body))))
    keep = False
    try:
        data = conn.send(h11.Request(method=method, target=target, headers=fields)) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        socket.write(id, data)
        answered = False
        head: Any = None
        parts: list[bytes] = []
        size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    chunk = await socket.read(id)
                except socket.SocketClosed as exc:
                    chunk = exc.rest
                    if not chunk and not answered and reused:
                        return None  # the server had closed it while idle: try a fresh one
                conn.receive_data(chunk)
                answered = answered or bool(chunk)
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > max_body_size:
                    raise RequestError(f"{host}:{port}: answer body over {max_body_size} bytes")
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise RequestError(f"{host}:{port} closed the connection before answering")
        keep = conn.our_state is h11.DONE and conn.their_state is h11.DONE
    except h11.ProtocolError as exc:
        raise RequestError(f"{host}:{port} answered with bad HTTP: {exc}") from None
    finally:
        pool = _pool().setdefault((host, port), [])
        if keep and len(pool) < MAX_IDLE_PER_HOST:
            pool.append(id)
        else:
            socket.shutdown(id)
            with trio.CancelScope(shield=True):  # a timed-out request still releases its socket
                await socket.close(id)
    names: dict[str, str] = {}
    for name, value in head.headers:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        names[key] = f"{names[key]}, {text}" if key in names else text
    return Response(head.status_code, names, b"".join(parts))
