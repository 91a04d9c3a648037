"""Which HTTP requests an operator endpoint (the debug console, the web page) answers.

Any web page open in a local browser can send requests to a loopback port,
so an endpoint that can change the node answers only requests whose Host
names it on loopback (a name an attacker's DNS points here, a rebinding,
does not) and that come with no cross-site Origin; what changes the node
needs the configured token besides.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

__all__ = ["authorized", "cross_site", "loopback"]


def loopback(netloc: str, listen_host: str) -> bool:
    """Whether a Host header (or an Origin's host) names an endpoint listening on `listen_host` on loopback."""
    host = netloc.rpartition("@")[2]
    host = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    if host in ("localhost", listen_host):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cross_site(origin: str | None, host: str, listen_host: str) -> bool:
    """Whether a request's Origin header names another site: neither its own Host nor loopback.

    No Origin is no cross-site request: browsers send one with every
    cross-site request that could do harm (and every WebSocket handshake).
    """
    if origin is None:
        return False
    netloc = urlsplit(origin).netloc
    return netloc != host and not loopback(netloc, listen_host)


def authorized(given: str, token: str | None) -> bool:
    """Whether `given` is the configured `token` (compared in constant time); never without one."""
    return token is not None and hmac.compare_digest(given.encode(), token.encode())
