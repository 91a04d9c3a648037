"""skypy.sharetable: read-only tables shared by every service of a node, by reference, updated atomically.

    sharetable.load("items", "data/items.toml")      # or a dict/list tree, a .json or a literal file
    items = sharetable.query("items")                # in any service: a deeply read-only view
    items["sword"]["damage"]                         # no copy per holder
    sharetable.update("items", new_tree)             # holders see it from their next message on
    sharetable.watch("items", on_items)              # on_items(view) runs here after each update

All services of a node share one interpreter, so a table is frozen once
(dicts become read-only dicts, lists read-only tuples) and every holder reads
that one object: a thousand holders of a 10 MB table cost one table, where
skynet's sharedata copies per VM and its users watch memory grow with
holders × size.

**Atomic updates.** skynet's users found that a handler could read half
of one version and half of the next. Here a view resolves to one version
per coroutine: the first read in a handler pins the version current then,
and that handler sees it until it ends, however often it suspends and
whatever updates come meanwhile; its next handler reads the newest. A plain
(non-async) handler cannot suspend, so it simply reads the newest. Old
versions are freed once no running handler reads them.
"""

from __future__ import annotations

import ast
import json
import tomllib
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Self

from ._api.coroutines import fork
from ._api.lifecycle import uniqueservice
from ._api.messages import call, running, send
from ._core.current import current
from ._core.fiber import Fiber
from ._core.node import Node
from ._core.service import Service
from .errors import CallError

__all__ = ["FrozenDict", "FrozenList", "SharedTable", "freeze", "load", "query", "update", "version", "watch"]

# Where the tables live: the node's extension of this name.
EXTENSION = "sharetable"


class _ReadOnly:
    """What FrozenDict and FrozenList share: changes raise TypeError, copies are the object itself."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a shared table is read-only: update it with sharetable.update")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self


class FrozenDict(_ReadOnly, dict[Any, Any]):
    """A dict that refuses every change with TypeError: the mappings of a shared table.

    A dict still, so it reads at dict speed and packs (`skypy.pack`) like one;
    copying it (``copy_messages``) returns it, as nothing can change it.
    """

    __slots__ = ()

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _ReadOnly._refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(_ReadOnly, tuple[Any, ...]):
    """A tuple whose list methods raise TypeError: the lists of a shared table."""

    __slots__ = ()

    append = extend = insert = remove = pop = clear = sort = reverse = _ReadOnly._refuse


def freeze(value: Any) -> Any:
    """A deeply read-only copy of `value`: dicts become FrozenDicts, lists and tuples FrozenLists.

    Changing it raises TypeError; scalars (str, bytes, numbers, None) are kept as they are.
    """
    if isinstance(value, dict):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze(item) for item in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    return value


def _read(path: Path) -> Any:
    """A tree from a TOML, JSON or Python-literal file, by its suffix."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.suffix == ".json":
        return json.loads(text)
    return ast.literal_eval(text)


class _Table:
    """One named table: its newest version, and which coroutine reads which version."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.version = 0
        self.data: Any = None
        # coroutine -> (its service, the data it pinned); forgotten with the coroutine.
        self.pins: weakref.WeakKeyDictionary[Fiber, tuple[Service, Any]] = weakref.WeakKeyDictionary()

    def replace(self, data: Any) -> None:
        """Make `data` the newest version, letting go of old ones no running coroutine reads."""
        self.data = data
        self.version += 1
        for fiber, (svc, _) in list(self.pins.items()):
            # A coroutine of a service gone may never end (nor be collected)
            # soon: the old version must not outlive the service for it.
            if svc.dead:
                del self.pins[fiber]

    def current(self) -> Any:
        """The version the running code reads: pinned for a coroutine, else the newest."""
        try:
            svc = current.get()
        except LookupError:
            return self.data
        fiber = svc.running
        if fiber is None:
            # A plain handler cannot suspend, and a task outside the
            # service's coroutines serves no request.
            return self.data
        pin = self.pins.get(fiber)
        if pin is not None:
            return pin[1]
        self.pins[fiber] = (svc, self.data)
        return self.data


class _Registry:
    """The node's tables by name, and the service that wakes watchers."""

    def __init__(self) -> None:
        self.tables: dict[str, _Table] = {}
        self.watcher: int | None = None

    @staticmethod
    def of(node: Node) -> _Registry:
        return node.extension(EXTENSION, _Registry)


def _table(name: str) -> _Table:
    table = _Registry.of(running().node).tables.get(name)
    if table is None:
        raise KeyError(f"no sharetable named {name!r}: load it first")
    return table


class SharedTable:
    """A read-only view of a shared table: reads go to the version the running handler pinned."""

    __slots__ = ("_table",)

    def __init__(self, table: _Table) -> None:
        self._table = table

    @property
    def name(self) -> str:
        """The table's name."""
        return self._table.name

    @property
    def value(self) -> Any:
        """The whole tree, as the running handler sees it (FrozenDicts and FrozenLists)."""
        return self._table.current()

    def __getitem__(self, key: Any) -> Any:
        return self._table.current()[key]

    def get(self, key: Any, default: Any = None) -> Any:
        """``view[key]``, or `default` if the table has no `key`."""
        data = self._table.current()
        try:
            return data[key]
        except (KeyError, IndexError):
            return default

    def __contains__(self, key: Any) -> bool:
        return key in self._table.current()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._table.current())

    def __len__(self) -> int:
        return len(self._table.current())

    def keys(self) -> Any:
        """The keys of a table whose root is a mapping."""
        return self._table.current().keys()

    def values(self) -> Any:
        """The values of a table whose root is a mapping."""
        return self._table.current().values()

    def items(self) -> Any:
        """The (key, value) pairs of a table whose root is a mapping."""
        return self._table.current().items()

    def __eq__(self, other: object) -> bool:
        data = self._table.current()
        return bool(data == (other.value if isinstance(other, SharedTable) else other))

    def __hash__(self) -> int:
        raise TypeError(f"unhashable: sharetable {self._table.name!r} compares by content, which updates change")

    def __repr__(self) -> str:
        return f"<SharedTable {self._table.name!r} {self._table.current()!r}>"


def load(name: str, value: Any) -> None:
    """Share `value` (a dict/list tree, or the path of a .toml, .json or Python-literal file) as `name`.

    Loading a name again is an update.
    """
    tree = _read(Path(value)) if isinstance(value, (str, Path)) else value
    registry = _Registry.of(running().node)
    table = registry.tables.get(name)
    if table is None:
        table = registry.tables[name] = _Table(name)
    table.replace(freeze(tree))
    if registry.watcher is not None:
        send(registry.watcher, "lua", "updated", name, table.version)


def update(name: str, value: Any) -> None:
    """Replace table `name` with `value`; each holder reads it from its next handler on."""
    _table(name)
    load(name, value)


def query(name: str) -> SharedTable:
    """A deeply read-only view of table `name`, shared by reference (KeyError if it was never loaded)."""
    return SharedTable(_table(name))


def version(name: str) -> int:
    """How many times `name` was loaded or updated: 1 after the first load."""
    return _table(name).version


def watch(name: str, fn: Callable[[SharedTable], Any]) -> None:
    """Run ``fn(view)`` in this service after each update of `name`, as a coroutine of its own.

    A burst of updates may run it once, for the newest.
    """
    seen = _table(name).version
    view = query(name)

    async def watching() -> None:
        registry = _Registry.of(running().node)
        nonlocal seen
        while True:
            if registry.watcher is None:
                registry.watcher = await uniqueservice("sharetable")
            waker = registry.watcher
            try:
                seen = await call(waker, "lua", "wait", name, seen)
            except CallError:
                # The service was killed (by an operator, say): start another.
                if registry.watcher == waker:
                    registry.watcher = None
                continue
            result = fn(view)
            if hasattr(result, "__await__"):
                await result

    fork(watching)
