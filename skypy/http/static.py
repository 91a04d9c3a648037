"""Serving the files of a folder: `http.static(folder)`, a handler to mount or route.

    app.mount("/", http.static("public"))      # GET /css/site.css -> public/css/site.css

The file is the request's ``params["path"]`` (what `Router.mount` or a
``{path:path}`` route matched), or its whole path. A folder serves its
``index.html``. A path that would leave the folder (``..``, a symlink out,
a NUL) is 404, as is anything missing; the content type comes from the
file's extension, text in UTF-8. Files are read whole, in the service's
turn: this is for pages and their assets, not for large downloads.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from ._message import Handler, Request, Response, text

__all__ = ["content_type", "static"]

# Types the platform's table may lack or get wrong, for what a web page ships.
_TYPES = {
    ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
    ".json": "application/json", ".svg": "image/svg+xml", ".wasm": "application/wasm", ".ico": "image/x-icon",
    ".txt": "text/plain", ".png": "image/png", ".woff2": "font/woff2",
}


def content_type(name: str) -> str:
    """The Content-Type for a file name: text types say UTF-8, unknown ones are octet-stream."""
    suffix = os.path.splitext(name)[1].lower()
    kind = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/json", "image/svg+xml"):
        kind += "; charset=utf-8"
    return kind


def resolve(root: Path, path: str) -> Path | None:
    """The file under `root` that `path` names, or None if there is none or it lies outside."""
    if "\0" in path:
        return None
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    candidate = root.joinpath(*parts).resolve()
    if candidate != root and root not in candidate.parents:
        return None  # a symlink pointing out of the folder
    if candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


def static(folder: str | os.PathLike[str]) -> Handler:
    """A handler serving the files under `folder` (GET and HEAD)."""
    root = Path(folder).resolve()

    async def serve(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return text("405 Method Not Allowed\n", 405, {"allow": "GET, HEAD"})
        file = resolve(root, request.params.get("path", request.path))
        if file is None:
            return text("404 Not Found\n", 404)
        return Response(200, {"content-type": content_type(file.name)}, file.read_bytes())

    return serve
