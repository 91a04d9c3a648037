"""The node's web page: a live view pushed over a WebSocket, ``/metrics`` for Prometheus, and operator actions.

    host, port = await web.serve("127.0.0.1", 8001)    # from a service: services/web_console.py

``GET /`` is the page (page/: plain HTML, CSS and JavaScript, nothing
fetched from elsewhere, charts drawn on canvases by the page itself).
``/live`` is its WebSocket: a ``hello`` with the last ten minutes of
samples, then a ``tick`` each second (live.py), and answers to what the
page asks (JSON objects, one a text frame): ``{"op": "detail", "address":
":0000000a"}`` for a service's coroutines, log lines and info;
``{"op": "kill" | "restart" | "logon" | "logoff", "address": ..., "token": ...}``
(restart: by its supervisor);
``{"op": "trace", "tag": ...}`` for the node's recent hops of a trace.
``GET /metrics`` is metrics.py's exposition.

As the debug console: without ``[web] token`` requests must name the page
on loopback (Host) and come from no other site (Origin), and the actions
are refused; with a token, the actions need it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from ... import http, supervisor, websocket
from ..._api import lifecycle, messages as api, tracing
from ..._api.coroutines import fork, sleep
from ..._core.message import address, handle as parse_address
from ...errors import SkypyError
from .. import guard, metrics, msglog
from .live import Live

__all__ = ["SAMPLE_EVERY", "serve", "token"]

PAGE = Path(__file__).with_name("page")
SAMPLE_EVERY = 1.0  # seconds between two samples pushed to the pages
# How long a detail request waits for the service's debug answers.
DETAIL_TIMEOUT = 3.0


def token() -> str | None:
    """The running node's ``[web] token``, or None if it has none."""
    web = api.running().node.config.web
    return None if web is None else web.get("token")


class _Page(http.Router):
    """The page's routes, answering only the requests `refused` lets through."""

    def __init__(self, listen_host: str, live: Live) -> None:
        super().__init__()
        self.listen_host = listen_host
        self.live = live
        self.pages: set[websocket.WebSocket] = set()
        self.get("/metrics")(self._metrics)
        self.websocket("/live")(self._live)
        self.mount("/", http.static(PAGE))

    def refused(self, request: http.Request) -> str | None:
        """Why `request` is not answered, or None."""
        host = request.headers.get("host", "")
        if token() is None and not guard.loopback(host, self.listen_host):
            return "without a [web] token the page answers only requests for its loopback address (Host)"
        origin = request.headers.get("origin")
        if guard.cross_site(origin, host, self.listen_host):
            return f"the page answers no cross-site request (Origin: {origin})"
        return None

    async def __call__(self, request: http.Request) -> http.Response:
        reason = self.refused(request)
        if reason is not None:
            return http.text(reason + "\n", 403)
        return await super().__call__(request)

    def find_websocket(self, request: http.Request) -> http.WebSocketHandler | None:
        reason = self.refused(request)
        if reason is None:
            return super().find_websocket(request)

        async def refuse(ws: websocket.WebSocket) -> None:
            await ws.close(1008, reason)  # policy violation

        return refuse

    async def _metrics(self, request: http.Request) -> http.Response:
        body = metrics.of(api.running().node).exposition()
        return http.Response(200, {"content-type": metrics.CONTENT_TYPE}, body)

    async def _live(self, ws: websocket.WebSocket) -> None:
        ws.send(json.dumps({"type": "hello", "history": list(self.live.history), "actions": token() is not None}))
        self.pages.add(ws)
        try:
            while True:
                message = await ws.receive()
                try:
                    request = json.loads(message)
                    answer = await self._answer(request)
                except (ValueError, TypeError, KeyError, SkypyError) as exc:
                    answer = {"type": "result", "ok": False, "text": str(exc)}
                ws.send(json.dumps(answer))
        except websocket.Closed:
            pass
        finally:
            self.pages.discard(ws)

    async def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "trace":
            tag = str(request["tag"])
            found = tracing.hops(api.running().node, tag)
            return {"type": "trace", "tag": tag, "hops": [[round(h.time, 3), address(h.source), h.text] for h in found]}
        where = request["address"]
        svc = api.running().node.service(parse_address(where))
        if op == "detail":
            return {
                "type": "detail", "address": where, "label": svc.label,
                "task": await _ask(svc.handle, "TASK"), "info": repr(await _ask(svc.handle, "INFO")),
                "logs": self.live.log_lines(svc.handle),
            }
        if op not in ("kill", "restart", "logon", "logoff"):
            raise SkypyError(f"no such request: {op!r}")
        if not guard.authorized(str(request.get("token", "")), token()):
            why = "a wrong token" if token() is not None else "no [web] token in the node's config"
            raise SkypyError(f"{op} needs the page's token: {why}")
        if op == "kill":
            await lifecycle.kill(svc.handle)
            text = f"killed {where}"
        elif op == "restart":
            text = f"restarted {where} as {address(await _restart(svc.handle))}"
        elif op == "logon":
            text = f"logging {where}'s messages to {msglog.logon(svc).path}"
        else:
            msglog.logoff(svc)
            text = f"stopped logging {where}'s messages"
        return {"type": "result", "ok": True, "text": text}

    async def sample_forever(self) -> None:
        """Sample the node each second and push it to every open page."""
        while True:
            await sleep(SAMPLE_EVERY)
            tick = json.dumps(self.live.sample())
            for ws in list(self.pages):
                try:
                    ws.send(tick)
                except SkypyError:  # closed, or its socket gone: its reader ends it
                    self.pages.discard(ws)


async def _restart(handle: int) -> int:
    """Have the supervisor of `handle` stop it and start it again; the new handle."""
    for sup, children in supervisor.tree().items():
        if handle in children:
            return await supervisor.restart_child(sup, handle)
    raise SkypyError(f"{address(handle)} is not supervised: only a supervisor can start it again")


async def _ask(handle: int, command: str) -> Any:
    """A service's answer to a debug command, or why there is none."""
    try:
        return await api.call(handle, "debug", command, timeout=DETAIL_TIMEOUT)
    except SkypyError as exc:
        return f"ERROR {exc}"
    except trio.TooSlowError:
        return "TIMEOUT"


async def serve(host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
    """Serve the page, its WebSocket and /metrics on `host`:`port` (0: a free port) from this service;
    the address it listens on. Metrics count from now."""
    node = api.running().node
    metrics.of(node)
    page = _Page(host, Live(node))
    where = await http.serve(page, host, port)
    fork(page.sample_forever)
    return where
