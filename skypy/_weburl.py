"""Where an ``http://`` or ``ws://`` URL points: the HTTP client and the WebSocket client read URLs alike."""

from __future__ import annotations

from urllib.parse import urlsplit


def split_url(url: str, scheme: str) -> tuple[str, int, str]:
    """(host, port, request target) of `url`, whose scheme must be `scheme`; ValueError if not."""
    parts = urlsplit(url)
    if parts.scheme != scheme or not parts.hostname:
        raise ValueError(f"{url!r}: the URL must start {scheme}:// and name a host (TLS is not supported)")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, parts.port or 80, target
