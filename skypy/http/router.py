"""Routing requests to handlers by method and path pattern.

    app = http.Router()

    @app.get("/users/{id}")
    async def user(req: http.Request) -> http.Response:
        return http.json({"id": req.params["id"]})

    app.mount("/static", http.static("public"))

A pattern's ``{name}`` matches one path segment, ``{name:path}`` the rest of
the path (slashes included); the values land in ``request.params``. A path
that matches no route is 404; one that matches with another method is 405
with an ``Allow`` header. HEAD is served by the GET route. Routes are tried
in the order they were added.
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable, TypeVar

import attrs

from ..websocket import WebSocket
from ._message import Handler, Request, Response, text

__all__ = ["Router", "WebSocketHandler"]

# A WebSocket route's handler: it gets the accepted connection.
WebSocketHandler = Callable[[WebSocket], Awaitable[None]]

H = TypeVar("H", bound=Callable[..., Awaitable[Any]])

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")


def compile_pattern(pattern: str, prefix: bool = False) -> re.Pattern[str]:
    """The regex for a route pattern; `prefix` matches the pattern and anything under it (for mount)."""
    if not pattern.startswith("/"):
        raise ValueError(f"a route pattern starts with '/': {pattern!r}")
    out, pos = [], 0
    for m in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>.*)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    body = "".join(out)
    if prefix:
        return re.compile(body.rstrip("/") + r"(?P<path>/.*|)\Z")
    return re.compile(body + r"\Z")


@attrs.frozen
class Route:
    regex: re.Pattern[str]
    methods: frozenset[str]  # empty: any method (a mount)
    handler: Handler


class Router:
    """Handlers by method and path; itself a handler (``await app(request)``)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.websockets: list[tuple[re.Pattern[str], WebSocketHandler]] = []

    def route(self, pattern: str, methods: tuple[str, ...] = ("GET",)) -> Callable[[H], H]:
        """A decorator adding a handler for `methods` on `pattern`."""
        regex = compile_pattern(pattern)
        wanted = frozenset(m.upper() for m in methods)

        def add(handler: H) -> H:
            self.routes.append(Route(regex, wanted, handler))
            return handler

        return add

    def get(self, pattern: str) -> Callable[[H], H]:
        """A decorator: GET (and HEAD) on `pattern`."""
        return self.route(pattern, ("GET",))

    def post(self, pattern: str) -> Callable[[H], H]:
        """A decorator: POST on `pattern`."""
        return self.route(pattern, ("POST",))

    def put(self, pattern: str) -> Callable[[H], H]:
        """A decorator: PUT on `pattern`."""
        return self.route(pattern, ("PUT",))

    def delete(self, pattern: str) -> Callable[[H], H]:
        """A decorator: DELETE on `pattern`."""
        return self.route(pattern, ("DELETE",))

    def mount(self, prefix: str, handler: Handler) -> None:
        """Send every request under `prefix` to `handler`, with the rest of the path in ``params["path"]``."""
        self.routes.append(Route(compile_pattern(prefix, prefix=True), frozenset(), handler))

    def websocket(self, pattern: str) -> Callable[[H], H]:
        """A decorator: a WebSocket endpoint on `pattern`; the handler gets a skypy.websocket.WebSocket."""
        regex = compile_pattern(pattern)

        def add(handler: H) -> H:
            self.websockets.append((regex, handler))
            return handler

        return add

    def find_websocket(self, request: Request) -> WebSocketHandler | None:
        """The WebSocket handler for `request`'s path (its params set), or None."""
        for regex, handler in self.websockets:
            m = regex.match(request.path)
            if m:
                request.params = m.groupdict()
                return handler
        return None

    async def __call__(self, request: Request) -> Response:
        allowed: set[str] = set()
        method = "GET" if request.method == "HEAD" else request.method
        for route in self.routes:
            m = route.regex.match(request.path)
            if m is None:
                continue
            if route.methods and method not in route.methods:
                allowed |= route.methods
                continue
            request.params = m.groupdict()
            return await route.handler(request)
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")
            return text("405 Method Not Allowed\n", 405, {"allow": ", ".join(sorted(allowed))})
        if any(regex.match(request.path) for regex, _ in self.websockets):
            return text("426 Upgrade Required: this is a WebSocket endpoint\n", 426, {"upgrade": "websocket"})
        return text("404 Not Found\n", 404)
