"""skypy.http: HTTP/1.1 servers and clients over skypy.socket, on h11.

    from skypy import http

    app = http.Router()

    @app.get("/users/{id}")
    async def user(req: http.Request) -> http.Response:
        return http.json({"id": req.params["id"]})

    host, port = await http.serve(app, host="127.0.0.1", port=0)
    answer = await http.request("GET", f"http://{host}:{port}/users/7")

Every byte goes through the node's socket server, so the close protocol,
`limit`, warnings and `netstat` apply to HTTP connections as to any other.
The protocol's rules (h11's, and the server's limits and timeouts) live in
sans-I/O code (`_serverproto`); the server and client only move bytes.
"""

from ._message import (
    Body as Body,
    Handler as Handler,
    Request as Request,
    Response as Response,
    html as html,
    json as json,
    text as text,
)
from ._serverproto import Limits as Limits
from .client import (
    DEFAULT_TIMEOUT as DEFAULT_TIMEOUT,
    RequestError as RequestError,
    RequestTimeout as RequestTimeout,
    request as request,
)
from .router import Router as Router, WebSocketHandler as WebSocketHandler
from .server import agent as agent, serve as serve, serve_connection as serve_connection
from .static import static as static

__all__ = [
    "DEFAULT_TIMEOUT", "Body", "Handler", "Limits", "Request", "RequestError", "RequestTimeout", "Response",
    "Router", "WebSocketHandler", "agent", "html", "json", "request", "serve", "serve_connection", "static", "text",
]
