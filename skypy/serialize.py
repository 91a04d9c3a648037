"""skynet's serialisation (``skynet.pack`` / ``skynet.unpack``), byte-exact and sans I/O.

Python <-> Lua mapping:

- ``None`` <-> nil, ``bool`` <-> boolean, ``float`` <-> float (a double).
- ``int`` <-> integer; it must fit in int64 like a Lua 5.3+ integer.
- ``str`` (sent UTF-8 encoded) and ``bytes`` -> string. A Lua string comes back
  as ``str`` when it is valid UTF-8 and as ``bytes`` otherwise, so ``bytes`` that
  happen to be valid UTF-8 return as ``str``. ``unpack(data, raw=True)`` returns
  every string as ``bytes`` instead, for binary payloads that must round-trip.
- ``list``/``tuple`` -> a table with only an array part; ``dict`` -> a table whose
  integer keys 1..n go in the array part (as skynet does for ``{10, 20, k = "v"}``)
  and the rest in the hash part. Coming back, a non-empty table with only an
  array part is a ``list``; any other table is a ``dict`` (array items under keys
  1..n), so ``{}`` and ``[]`` both return as ``{}`` (like lua-cjson, an empty
  table reads as an object) and ``{1: "a"}`` returns as ``["a"]``.
- Repacking what ``unpack`` returned reproduces the original bytes. Lua values
  with no Python form (userdata, a table used as a key) raise ``UnpackError``.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["MAX_DEPTH", "PackError", "UnpackError", "pack", "unpack"]

MAX_DEPTH = 32
"""How many tables may nest inside one another (skynet's MAX_DEPTH)."""


class PackError(ValueError):
    """A Python value has no skynet serialisation."""


class UnpackError(ValueError):
    """Bytes are not a valid skynet serialisation."""


# Type byte = type | cookie << 3. Types: nil 0, boolean 1, number 2,
# userdata 3, short string 4, long string 5, table 6.
_NIL = 0x00
_FALSE = 0x01
_TRUE = 0x09
_ZERO = 0x02
_U8 = 0x0A
_U16 = 0x12
_I32 = 0x22
_I64 = 0x32
_REAL = 0x42
_SHORT_STRING = 0x04
_LONG_STRING16 = 0x15
_LONG_STRING32 = 0x25
_SHORT_STRING_MAX = 31
# Cookie 31 is the escape "array size follows as a packed integer", so at most
# 30 array items are counted in the type byte itself.
_TABLE = 0x06
_TABLE_BIG = 0xFE
_TABLE_INLINE_MAX = 30

_pack_u8 = struct.Struct("<BB").pack
_pack_u16 = struct.Struct("<BH").pack
_pack_i32 = struct.Struct("<Bi").pack
_pack_i64 = struct.Struct("<Bq").pack
_pack_real = struct.Struct("<Bd").pack
_pack_u32 = struct.Struct("<BI").pack

# number cookie -> the Struct of its payload (cookie 0, the integer zero, has none).
_NUMBER_FORMATS = {
    1: struct.Struct("<B"),
    2: struct.Struct("<H"),
    4: struct.Struct("<i"),
    6: struct.Struct("<q"),
    8: struct.Struct("<d"),
}
_LENGTH_FORMATS = {2: struct.Struct("<H"), 4: struct.Struct("<I")}


def pack(*values: object) -> bytes:
    """Serialise values as one skynet message, exactly as ``skynet.pack`` would."""
    buf = bytearray()
    for value in values:
        _pack_value(buf, value, 0)
    return bytes(buf)


def _pack_value(buf: bytearray, value: object, depth: int) -> None:
    if value is None:
        buf.append(_NIL)
    elif value is True:
        buf.append(_TRUE)
    elif value is False:
        buf.append(_FALSE)
    elif isinstance(value, int):
        _pack_int(buf, value)
    elif isinstance(value, str):
        _pack_string(buf, value.encode())
    elif isinstance(value, float):
        buf += _pack_real(_REAL, value)
    elif isinstance(value, (bytes, bytearray)):
        _pack_string(buf, value)
    elif isinstance(value, (list, tuple)):
        _check_depth(depth)
        _pack_array_header(buf, len(value))
        for item in value:
            _pack_value(buf, item, depth + 1)
        buf.append(_NIL)
    elif isinstance(value, dict):
        _check_depth(depth)
        _pack_dict(buf, value, depth)
    else:
        raise PackError(f"cannot pack {type(value).__name__} value {value!r}")


def _check_depth(depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise PackError(f"tables nest deeper than {MAX_DEPTH} levels (a cycle?)")


def _pack_int(buf: bytearray, value: int) -> None:
    # Only non-negative integers get the u8/u16 forms: skynet sends -1 as i32.
    if value == 0:
        buf.append(_ZERO)
    elif 0 < value < 0x100:
        buf += _pack_u8(_U8, value)
    elif 0 < value < 0x10000:
        buf += _pack_u16(_U16, value)
    elif -0x8000_0000 <= value < 0x8000_0000:
        buf += _pack_i32(_I32, value)
    elif -0x8000_0000_0000_0000 <= value < 0x8000_0000_0000_0000:
        buf += _pack_i64(_I64, value)
    else:
        raise PackError(f"integer {value} does not fit in int64 (a Lua integer)")


def _pack_string(buf: bytearray, data: bytes | bytearray) -> None:
    n = len(data)
    if n <= _SHORT_STRING_MAX:
        buf.append(_SHORT_STRING | n << 3)
    elif n < 0x10000:
        buf += _pack_u16(_LONG_STRING16, n)
    elif n < 0x1_0000_0000:
        buf += _pack_u32(_LONG_STRING32, n)
    else:
        raise PackError(f"string of {n} bytes is longer than skynet's 4 GiB limit")
    buf += data


def _pack_array_header(buf: bytearray, n: int) -> None:
    if n <= _TABLE_INLINE_MAX:
        buf.append(_TABLE | n << 3)
    else:
        buf.append(_TABLE_BIG)
        _pack_int(buf, n)


def _pack_dict(buf: bytearray, table: dict[Any, Any], depth: int) -> None:
    n = 0
    if 1 in table:
        # `1 in table` is also true for the keys True and 1.0, which Lua keeps
        # apart from the integer 1 (or, for 1.0, folds into it but skynet then
        # packs it from the hash part), so count only genuine int keys.
        int_keys = {k for k in table if isinstance(k, int) and not isinstance(k, bool)}
        while n + 1 in int_keys:
            n += 1
    _pack_array_header(buf, n)
    for i in range(1, n + 1):
        _pack_value(buf, table[i], depth + 1)
    for key, value in table.items():
        if n and isinstance(key, int) and not isinstance(key, bool) and 1 <= key <= n:
            continue
        if key is None:
            raise PackError("None cannot be a table key (a Lua table has no nil key)")
        _pack_value(buf, key, depth + 1)
        _pack_value(buf, value, depth + 1)
    buf.append(_NIL)


def unpack(data: bytes | bytearray | memoryview, *, raw: bool = False) -> tuple[Any, ...]:
    """Deserialise a skynet message into its values; ``raw`` keeps every string as bytes."""
    return _Unpacker(bytes(data), raw).values()


class _Unpacker:
    """A cursor over one message; every read checks its bounds so bad input is an UnpackError."""

    __slots__ = ("data", "end", "raw")

    def __init__(self, data: bytes, raw: bool) -> None:
        self.data = data
        self.end = len(data)
        self.raw = raw

    def values(self) -> tuple[Any, ...]:
        result = []
        pos = 0
        while pos < self.end:
            value, pos = self.value(pos, 0)
            result.append(value)
        return tuple(result)

    def need(self, pos: int, size: int, what: str) -> int:
        if pos + size > self.end:
            raise UnpackError(
                f"truncated message: {what} at offset {pos} needs {size} bytes,"
                f" {self.end - pos} left"
            )
        return pos + size

    def value(self, pos: int, depth: int) -> tuple[object, int]:
        start = pos
        type_byte = self.data[self.need(pos, 1, "type byte") - 1]
        pos += 1
        kind = type_byte & 7
        cookie = type_byte >> 3
        if kind == 2:
            if cookie == 0:
                return 0, pos
            fmt = _NUMBER_FORMATS.get(cookie)
            if fmt is not None:
                end = self.need(pos, fmt.size, "number")
                return fmt.unpack_from(self.data, pos)[0], end
        elif kind == 4:
            return self.string(pos, cookie)
        elif kind == 6:
            return self.table(pos, cookie, depth)
        elif kind == 5:
            fmt = _LENGTH_FORMATS.get(cookie)
            if fmt is not None:
                end = self.need(pos, fmt.size, "string length")
                return self.string(end, fmt.unpack_from(self.data, pos)[0])
        elif type_byte == _NIL:
            return None, pos
        elif type_byte == _TRUE:
            return True, pos
        elif type_byte == _FALSE:
            return False, pos
        elif kind == 3:
            raise UnpackError(f"userdata (a C pointer) at offset {start} cannot be unpacked")
        raise UnpackError(f"bad type byte {type_byte:#04x} at offset {start}")

    def string(self, pos: int, n: int) -> tuple[bytes | str, int]:
        end = self.need(pos, n, "string")
        data = self.data[pos:end]
        if not self.raw:
            try:
                return data.decode(), end
            except UnicodeDecodeError:
                pass
        return data, end

    def table(self, pos: int, cookie: int, depth: int) -> tuple[list[Any] | dict[Any, Any], int]:
        start = pos - 1
        if depth >= MAX_DEPTH:
            raise UnpackError(f"table at offset {start} nests deeper than {MAX_DEPTH} levels")
        n = cookie
        if cookie == 31:
            size, pos = self.value(pos, depth + 1)
            if type(size) is not int or size < 0:
                raise UnpackError(f"table at offset {start} has array size {size!r}")
            n = size
        # Every item takes at least one byte: refuse absurd sizes before allocating.
        self.need(pos, n, "table array part")
        array: list[Any] = []
        for _ in range(n):
            item, pos = self.value(pos, depth + 1)
            array.append(item)
        if self.data[self.need(pos, 1, "table end") - 1] == _NIL:
            return (array if array else {}), pos + 1
        table: dict[Any, Any] = dict(enumerate(array, 1))
        while True:
            key_pos = pos
            key, pos = self.value(pos, depth + 1)
            if key is None:
                return table, pos
            if isinstance(key, (list, dict)):
                raise UnpackError(
                    f"a table used as a table key at offset {key_pos} has no Python form"
                )
            table[key], pos = self.value(pos, depth + 1)
