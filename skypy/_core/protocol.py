"""Protocol tables: names ↔ skynet's type numbers, with optional pack/unpack per type."""

from __future__ import annotations

from typing import Any, Callable

import attrs

from ..errors import SkypyError
from . import message

Packer = Callable[..., Any]
Unpacker = Callable[[Any], tuple[Any, ...]]

BUILTIN = {
    "text": message.PTYPE_TEXT,
    "response": message.PTYPE_RESPONSE,
    "multicast": message.PTYPE_MULTICAST,
    "client": message.PTYPE_CLIENT,
    "system": message.PTYPE_SYSTEM,
    "harbor": message.PTYPE_HARBOR,
    "socket": message.PTYPE_SOCKET,
    "error": message.PTYPE_ERROR,
    "debug": message.PTYPE_DEBUG,
    "lua": message.PTYPE_LUA,
    "trace": message.PTYPE_TRACE,
}


@attrs.define(slots=True)
class Handler:
    """A service's dispatch entry for one protocol: a function, or a table of commands."""

    fn: Callable[..., Any] | None
    commands: dict[Any, Callable[..., Any]] | None = None


class ProtocolTable:
    """Which protocols a service knows; starts from the node's built-ins.

    Payloads inside one node travel as the tuple of arguments given to
    `send`, so built-in protocols have no pack/unpack; a protocol registered
    with them packs on the sending side and unpacks on the receiving side.
    """

    __slots__ = ("ids", "names", "packers", "unpackers", "senders")

    def __init__(self, base: ProtocolTable | None = None) -> None:
        if base is None:
            self.ids: dict[str | int, int] = dict(BUILTIN.items())
            self.ids.update((n, n) for n in BUILTIN.values())
            self.names: dict[int, str] = {n: name for name, n in BUILTIN.items()}
            self.packers: dict[int, Packer] = {}
            self.unpackers: dict[int, Unpacker] = {}
        else:
            self.ids = dict(base.ids)
            self.names = dict(base.names)
            self.packers = dict(base.packers)
            self.unpackers = dict(base.unpackers)
        # The number and packer for sending a protocol given by name or
        # number, as `senders[ptype]`: a plain dict lookup on the send path,
        # filled on first use.
        self.senders = _Senders(self)

    def register(
        self, name: str, ptype: int, pack: Packer | None = None, unpack: Unpacker | None = None
    ) -> None:
        """Add a protocol; name and number must both be new, as in skynet."""
        if not 0 <= ptype <= 255:
            raise SkypyError(f"protocol {name!r}: id {ptype} is outside 0..255")
        if name in self.ids or ptype in self.names:
            raise SkypyError(f"protocol {name!r} ({ptype}) clashes with one already registered")
        self.ids[name] = ptype
        self.ids[ptype] = ptype
        self.names[ptype] = name
        if pack is not None:
            self.packers[ptype] = pack
        if unpack is not None:
            self.unpackers[ptype] = unpack
        self.senders.clear()

    def id_of(self, ptype: str | int) -> int:
        """The number of a protocol given by name or number."""
        try:
            return self.ids[ptype]
        except KeyError:
            raise SkypyError(f"unknown protocol {ptype!r}") from None

    def name_of(self, ptype: int) -> str:
        return self.names.get(ptype, str(ptype))


class _Senders(dict[str | int, tuple[int, Packer | None]]):
    """`ProtocolTable.senders`: a protocol (name or number) -> its number and packer."""

    __slots__ = ("_table",)

    def __init__(self, table: ProtocolTable) -> None:
        super().__init__()
        self._table = table

    def __missing__(self, ptype: str | int) -> tuple[int, Packer | None]:
        pid = self._table.id_of(ptype)  # SkypyError for an unknown protocol
        entry = self[ptype] = (pid, self._table.packers.get(pid))
        return entry
