"""Reload services as their files change: ``skypy run --watch``, for development.

`watcher` is a service: it watches the service path with watchfiles (an
optional dependency, ``pip install 'skypy[watch]'``) and, when a ``.py``
file changes, reloads in place every service running that file
(`skypy.reload`), one after another, logging each result. A reload that
fails leaves the old code serving, as always, so saving a half-written
file costs nothing but a log line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._api.coroutines import fork
from .._api.messages import error, running
from .._api.reload import ReloadError, reload
from .._core.message import address
from ..errors import ServiceNotFound, SkypyError

__all__ = ["changed_services", "watcher"]


def changed_services(paths: set[Path]) -> list[int]:
    """The services of this node running one of the files `paths`, oldest first."""
    found = []
    for handle, svc in sorted(running().node.services.items()):
        file = (svc.namespace or {}).get("__file__")
        if file is not None and Path(file).resolve() in paths and svc.namespace is not None:
            if str(svc.namespace.get("__name__", "")).startswith("skypy.service."):
                found.append(handle)
    return found


async def watcher(*folders: Any) -> None:
    """A service's main: reload the services whose files change under `folders` (default: the service path)."""
    try:
        from watchfiles import awatch
    except ImportError:
        raise SkypyError("skypy run --watch needs watchfiles: pip install 'skypy[watch]'") from None
    watched = [Path(f) for f in folders] or [p for p in running().node.config.service_path if p.is_dir()]

    async def watching() -> None:
        # Awaiting watchfiles keeps this service's turn: it has nothing else to
        # do. Its thread looks up every 100 ms, so the node closes that fast.
        async for changes in awatch(*watched, debounce=400, rust_timeout=100):
            paths = {Path(path).resolve() for _, path in changes if path.endswith(".py")}
            for handle in changed_services(paths):
                try:
                    await reload(handle)
                except (ReloadError, ServiceNotFound) as exc:
                    error(f"watch: {address(handle)} not reloaded: {exc}")

    fork(watching)
    error(f"watch: reloading services as their files change under {', '.join(map(str, watched))}")
