"""The node's web page and Prometheus metrics: open http://127.0.0.1:8001/ in a browser.

    web_console [host] port      # host defaults to 127.0.0.1; port 0 picks a free one

Serves skypy.ops.web: the live page, its WebSocket and ``/metrics``; the
``[web]`` config table starts it. Logs ``Web console at http://HOST:PORT/``.
"""

import skypy
from skypy.ops import web


async def main(*args):
    host, port = ("127.0.0.1", *args) if len(args) == 1 else args
    host, port = await web.serve(host, int(port))
    skypy.error(f"Web console at http://{host}:{port}/")
