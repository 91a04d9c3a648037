"""Checking that a block of code leaves no file descriptor open (Linux: /proc/self/fd)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

FD_DIR = "/proc/self/fd"


def open_fds() -> dict[int, str]:
    """The process's open fds, each with what it refers to (``socket:[1234]``, a path…)."""
    fds = {}
    for name in os.listdir(FD_DIR):
        try:
            fds[int(name)] = os.readlink(f"{FD_DIR}/{name}")
        except OSError:
            pass  # listdir's own fd, closed by now
    return fds


@contextmanager
def no_fd_leaks() -> Iterator[None]:
    """Fail (AssertionError naming them) if the block leaves fds open that were not open before it."""
    before = open_fds()
    yield
    leaked = {fd: what for fd, what in open_fds().items() if before.get(fd) != what}
    shown = ", ".join(f"{fd} -> {what}" for fd, what in sorted(leaked.items())[:10])
    assert not leaked, f"{len(leaked)} fds leaked: {shown}{', …' if len(leaked) > 10 else ''}"
