"""How many bytes a set of objects holds, not counting what they share with everyone.

Python has one heap per process, not one per service as skynet has one Lua
state per service, so a service's MEM is an estimate: the sum of
``sys.getsizeof`` over the objects reachable from its own roots (debug.py
picks them). The walk stops at what is shared by nature: modules, classes,
code, functions' globals, trio's tasks, services and whatever the caller
names.
"""

from __future__ import annotations

import gc
import sys
from types import BuiltinFunctionType, CodeType, CoroutineType, FrameType, FunctionType, ModuleType
from typing import Any, Iterable

from trio.lowlevel import Task

from .._core.service import Service

# A walk stops after this many objects, so MEM stays quick enough to answer
# inside the service's turn; the figure is then a lower bound.
MAX_OBJECTS = 200_000

_SHARED = (ModuleType, type, CodeType, BuiltinFunctionType, Task, Service)


def size_of(roots: Iterable[Any], stop: Iterable[Any] = ()) -> int:
    """Bytes of the objects reachable from `roots`, not crossing shared objects or `stop`."""
    seen = {id(obj) for obj in stop}
    pending = list(roots)
    total = 0
    while pending and len(seen) < MAX_OBJECTS:
        obj = pending.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, _SHARED):
            continue
        total += sys.getsizeof(obj)
        pending.extend(_referents(obj))
    return total


def _referents(obj: Any) -> Iterable[Any]:
    if isinstance(obj, FunctionType):
        # Not __globals__ (the module's) nor __code__ (shared): what the function itself holds.
        return [obj.__closure__, obj.__defaults__, obj.__kwdefaults__, obj.__dict__]
    if isinstance(obj, CoroutineType):
        # A suspended coroutine holds its locals and what it awaits.
        return [obj.cr_await] + ([] if obj.cr_frame is None else [obj.cr_frame])
    if isinstance(obj, FrameType):
        return list(obj.f_locals.values())
    return gc.get_referents(obj)
