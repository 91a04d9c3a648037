"""Finds service modules on the service path and instantiates them in fresh namespaces.

Each launch runs the module's code in a new globals dict, so module globals
belong to that service instance, as each skynet service has its own Lua
state. Compiling is the slow part, so code objects are cached per file
(`clear` drops the cache, for the console's ``clearcache``).
"""

from __future__ import annotations

import builtins
import re
from pathlib import Path
from types import CodeType
from typing import Any, Callable

from ..errors import ServiceNotFound, SkypyError

_VALID_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


class ServiceLoader:
    """Maps a service name to `async def main(*args)` from ``<dir>/<name>.py``."""

    def __init__(self, service_path: list[Path]) -> None:
        self.service_path = service_path
        self._code: dict[Path, CodeType] = {}

    def find(self, name: str) -> Path:
        """The file that defines service `name`; ``a.b`` means ``a/b.py``."""
        if not _VALID_NAME.match(name):
            raise ServiceNotFound(f"invalid service name {name!r}")
        relative = Path(*name.split(".")).with_suffix(".py")
        for directory in self.service_path:
            candidate = directory / relative
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(d) for d in self.service_path) or "(empty service_path)"
        raise ServiceNotFound(f"no service {name!r} on the service path: {searched}")

    def load(self, name: str) -> Callable[..., Any]:
        """Run the module of service `name` in a fresh namespace and return its `main`."""
        path = self.find(name)
        code = self._code.get(path)
        if code is None:
            code = self._code[path] = self.compile(path)
        namespace = self.run(name, path, code)
        main: object = namespace.get("main")
        if not callable(main):
            raise SkypyError(f"service {name!r} ({path}) defines no main(*args)")
        return main

    def compile(self, path: Path) -> CodeType:
        """The code of `path` as the file reads now, whatever is cached (a reload in place)."""
        return compile(path.read_bytes(), str(path), "exec")

    def run(self, name: str, path: Path, code: CodeType) -> dict[str, Any]:
        """Run `code`, service `name`'s module from `path`, in a fresh namespace, and return it."""
        namespace: dict[str, Any] = {
            "__name__": f"skypy.service.{name}",
            "__file__": str(path),
            "__builtins__": builtins,
        }
        exec(code, namespace)
        return namespace

    def remember(self, path: Path, code: CodeType) -> None:
        """Cache `code` for `path`, so services started from now on run it (after a reload)."""
        self._code[path] = code

    def clear(self) -> None:
        """Forget compiled code, so edited service files are read again."""
        self._code.clear()
