"""skypy.pack against bytes captured from a real skynet, plus its Python mapping and limits."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings, strategies as st

from skypy.serialize import MAX_DEPTH, PackError, UnpackError, pack, unpack
from tests.helpers.vectors import PACK_VECTORS

# --- a reader for the Lua literals in the vector file -------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>-?\d+(?:\.\d+)?)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<dots>\.\.\.)
    | (?P<name>[A-Za-z_][\w.]*)
    | (?P<punct>[{}(),=])
    )""",
    re.VERBOSE,
)
_NAMED = {
    "nil": None,
    "true": True,
    "false": False,
    "math.maxinteger": 2**63 - 1,
    "math.mininteger": -(2**63),
}


def _lua_string(literal: str) -> str | bytes:
    escaped = literal[1:-1].encode()
    data = re.sub(
        rb"\\(\d{1,3}|.)",
        lambda m: bytes([int(m[1])]) if m[1].isdigit() else m[1],
        escaped,
    )
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


class _LuaReader:
    """Reads the Lua subset the vectors use: literals, string.rep, tables, `{1, 2, ..., n}`."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while text[pos:].strip():
            m = _TOKEN.match(text, pos)
            assert m, f"cannot read Lua at {text[pos:]!r}"
            self.tokens.append((m.lastgroup or "", m[m.lastgroup or 0]))
            pos = m.end()
        self.i = 0

    def peek(self) -> str:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.i]
        assert expected is None or token[1] == expected, (token, expected)
        self.i += 1
        return token

    def values(self) -> tuple:
        values = [self.value()]
        while self.peek() == ",":
            self.take(",")
            values.append(self.value())
        assert self.i == len(self.tokens), "unread Lua"
        return tuple(values)

    def value(self) -> object:
        kind, text = self.take()
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "string":
            return _lua_string(text)
        if text == "string.rep":
            self.take("(")
            piece = self.value()
            self.take(",")
            count = self.value()
            self.take(")")
            return piece * count  # type: ignore[operator]
        if text == "{":
            return self.table()
        return _NAMED[text]

    def table(self) -> list | dict:
        array: list = []
        hashed: dict = {}
        in_range = False
        while self.peek() != "}":
            if self.peek() == "...":
                self.take()
                in_range = True
            elif self.tokens[self.i][0] == "name" and self.tokens[self.i + 1][1] == "=":
                key = self.take()[1]
                self.take("=")
                hashed[key] = self.value()
            else:
                item = self.value()
                if in_range:
                    step = array[-1] - array[-2]
                    array.extend(range(array[-1] + step, item, step))
                    in_range = False
                array.append(item)
            if self.peek() == ",":
                self.take(",")
        self.take("}")
        if array and not hashed:
            return array
        return {**dict(enumerate(array, 1)), **hashed}


def _read_vectors() -> list[tuple[str, str, bytes]]:
    rows = []
    for line in PACK_VECTORS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, lua, hexed = line.split("\t")
            rows.append((name, lua, bytes.fromhex(hexed)))
    return rows


VECTORS = _read_vectors()
VECTOR_IDS = [name for name, _, _ in VECTORS]
# A prefix of several values can itself be a valid message; one value's cannot.
ONE_VALUE_VECTORS = {
    name: packed for name, lua, packed in VECTORS if len(_LuaReader(lua).values()) == 1
}


def assert_identical(actual: object, expected: object) -> None:
    # repr also tells True from 1 and 1.0 from 1, which == does not.
    assert actual == expected
    assert repr(actual) == repr(expected)


def nested_lists(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


# --- the captured vectors ------------------------------------------------------


def test_the_vector_file_is_read_whole() -> None:
    assert len(VECTORS) == 35


@pytest.mark.parametrize(("name", "lua", "packed"), VECTORS, ids=VECTOR_IDS)
def test_vector_packs_to_the_captured_bytes(name: str, lua: str, packed: bytes) -> None:
    assert pack(*_LuaReader(lua).values()) == packed


@pytest.mark.parametrize(("name", "lua", "packed"), VECTORS, ids=VECTOR_IDS)
def test_vector_unpacks_to_its_lua_values(name: str, lua: str, packed: bytes) -> None:
    assert_identical(unpack(packed), _LuaReader(lua).values())


@pytest.mark.parametrize("name", list(ONE_VALUE_VECTORS))
def test_every_truncation_of_a_vector_raises_unpack_error(name: str) -> None:
    packed = ONE_VALUE_VECTORS[name]
    cuts = range(1, len(packed)) if len(packed) < 300 else [1, 2, 3, 4, 5, 33, len(packed) - 1]
    for cut in cuts:
        with pytest.raises(UnpackError, match="offset"):
            unpack(packed[:cut])


# --- rules the vectors do not reach ------------------------------------------


def test_array_of_30_items_counts_them_in_the_type_byte() -> None:
    assert pack(list(range(30)))[0] == 6 | 30 << 3


def test_array_of_31_items_gives_its_size_as_a_packed_integer() -> None:
    assert pack(list(range(31)))[:3] == bytes([0xFE, 0x0A, 31])


def test_long_string_uses_u16_length_up_to_65535() -> None:
    assert pack(b"x" * 65535)[:3] == bytes([0x15, 0xFF, 0xFF])


def test_integer_outside_int64_raises_pack_error_naming_it() -> None:
    with pytest.raises(PackError, match="9223372036854775808"):
        pack(2**63)
    with pytest.raises(PackError, match="-9223372036854775809"):
        pack(-(2**63) - 1)


def test_nan_and_infinities_pack_as_doubles() -> None:
    inf, nan = unpack(pack(math.inf, math.nan))
    assert inf == math.inf and math.isnan(nan)


def test_unsupported_type_raises_pack_error_naming_it() -> None:
    with pytest.raises(PackError, match="set"):
        pack({1, 2})


def test_pack_of_nothing_is_empty_and_unpacks_to_no_values() -> None:
    assert pack() == b""
    assert unpack(b"") == ()


def test_unpack_accepts_bytearray_and_memoryview() -> None:
    packed = pack("get", 42)
    assert unpack(bytearray(packed)) == unpack(memoryview(packed)) == ("get", 42)


# --- the documented Python mapping --------------------------------------------


def test_bytes_that_are_valid_utf8_come_back_as_str() -> None:
    assert_identical(unpack(pack(b"caf\xc3\xa9")), ("café",))


def test_bytes_that_are_not_utf8_come_back_as_bytes() -> None:
    assert_identical(unpack(pack(b"\xff\x00")), (b"\xff\x00",))


def test_raw_unpack_returns_every_string_as_bytes() -> None:
    assert_identical(unpack(pack("k", {"a": "é"}), raw=True), (b"k", {b"a": "é".encode()}))


def test_tuple_packs_as_an_array_and_comes_back_as_a_list() -> None:
    assert pack((1, 2)) == pack([1, 2])
    assert_identical(unpack(pack((1, 2))), ([1, 2],))


def test_empty_list_and_empty_dict_both_come_back_as_empty_dict() -> None:
    assert pack([]) == pack({}) == bytes.fromhex("0600")
    assert_identical(unpack(pack([], {})), ({}, {}))


def test_dict_with_keys_1_to_n_packs_as_an_array_and_comes_back_as_a_list() -> None:
    assert pack({2: "b", 1: "a"}) == pack(["a", "b"])
    assert_identical(unpack(pack({2: "b", 1: "a"})), (["a", "b"],))


def test_mixed_table_comes_back_as_dict_with_array_items_under_1_to_n() -> None:
    assert_identical(unpack(pack({"k": "v", 1: 10, 2: 20})), ({1: 10, 2: 20, "k": "v"},))


def test_integer_keys_after_a_gap_go_to_the_hash_part() -> None:
    assert pack({1: "a", 3: "c"}) == bytes.fromhex("0e0c61") + bytes.fromhex("0a030c6300")


def test_true_and_float_keys_are_not_array_indexes() -> None:
    assert pack({True: "x"}) == bytes.fromhex("06090c7800")
    assert_identical(unpack(pack({1.0: "x"})), ({1.0: "x"},))


def test_none_as_a_table_key_raises_pack_error() -> None:
    with pytest.raises(PackError, match="key"):
        pack({None: 1})


def test_none_inside_a_list_is_kept_as_a_nil_item() -> None:
    assert pack([None, 1]) == bytes.fromhex("16000a0100")
    assert_identical(unpack(pack([None, 1])), ([None, 1],))


def test_repacking_an_unpacked_mixed_table_reproduces_skynets_bytes() -> None:
    mixed = bytes.fromhex("160a0a0a140c6b0c7600")
    assert pack(*unpack(mixed)) == mixed


# --- depth --------------------------------------------------------------------


def test_tables_nested_max_depth_deep_round_trip() -> None:
    value = nested_lists(MAX_DEPTH)
    assert unpack(pack(value)) == (value,)


def test_tables_nested_deeper_than_max_depth_raise_pack_error() -> None:
    with pytest.raises(PackError, match="32"):
        pack(nested_lists(MAX_DEPTH + 1))


def test_a_list_containing_itself_raises_pack_error() -> None:
    loop: list = []
    loop.append(loop)
    with pytest.raises(PackError, match="deeper"):
        pack(loop)


def test_unpack_refuses_tables_nested_deeper_than_max_depth() -> None:
    depth = MAX_DEPTH + 1
    with pytest.raises(UnpackError, match="deeper"):
        unpack(b"\x0e" * depth + b"\x02" + b"\x00" * depth)


# --- malformed input ----------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "complaint"),
    [
        (b"\x07", "bad type byte 0x07 at offset 0"),
        (b"\x08", "bad type byte 0x08"),  # nil with a cookie
        (b"\x11", "bad type byte 0x11"),  # boolean cookie 2
        (b"\x1a\x00", "bad type byte 0x1a"),  # number cookie 3
        (b"\x4a", "bad type byte 0x4a"),  # number cookie 9
        (b"\x0d\x00", "bad type byte 0x0d"),  # long string cookie 1
        (b"\x03" + bytes(8), "userdata"),
        (b"\x12\x01", "number at offset 1 needs 2 bytes, 1 left"),
        (b"\x25\x10\x00\x00\x00abc", "string at offset 5 needs 16 bytes, 3 left"),
        (b"\x0e\x0a\x01", "table end at offset 3"),
        (b"\x06\x0a\x01", "type byte at offset 3"),  # a key with no value
        (b"\xfe\x42" + bytes(6) + b"\xf0\x3f", "array size 1.0"),
        (b"\xfe\x22\xff\xff\xff\xff", "array size -1"),
        (b"\xfe\x32" + bytes(6) + b"\xff\x7f", "table array part at offset 10"),
        (b"\x06\x0e\x02\x00\x02\x00", "table used as a table key at offset 1"),
    ],
)
def test_malformed_message_raises_unpack_error_with_offset(packet: bytes, complaint: str) -> None:
    with pytest.raises(UnpackError, match=complaint):
        unpack(packet)


# --- properties ---------------------------------------------------------------

_INT64 = st.integers(-(2**63), 2**63 - 1)
_NOT_UTF8 = st.binary(max_size=40).map(lambda b: b"\xff" + b)
# Canonical values are those unpack returns unchanged: no tuples, no empty
# lists, no bytes that decode as UTF-8 and no dicts shaped like an array.
_CANONICAL_SCALARS = (
    st.none()
    | st.booleans()
    | _INT64
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | _NOT_UTF8
)
_CANONICAL_KEYS = (
    st.text(max_size=10) | st.integers(-(2**63), 0) | st.booleans() | st.floats(allow_nan=False)
)
_CANONICAL = st.recursive(
    _CANONICAL_SCALARS,
    lambda inner: st.lists(inner, min_size=1, max_size=35)
    | st.dictionaries(_CANONICAL_KEYS, inner, min_size=1, max_size=8),
    max_leaves=20,
)
_ANY_SCALARS = (
    st.none() | st.booleans() | _INT64 | st.floats() | st.text(max_size=40) | st.binary(max_size=40)
)
_ANY = st.recursive(
    _ANY_SCALARS,
    lambda inner: st.lists(inner, max_size=35)
    | st.tuples(inner, inner)
    | st.dictionaries(
        st.text(max_size=5) | st.integers(-3, 40) | st.booleans() | st.floats(allow_nan=False),
        inner,
        max_size=8,
    ),
    max_leaves=20,
)


@given(st.lists(_CANONICAL, max_size=4))
def test_canonical_values_round_trip_exactly(values: list) -> None:
    assert_identical(unpack(pack(*values)), tuple(values))


@given(st.lists(_ANY, max_size=4))
def test_repacking_what_unpack_returned_reproduces_the_bytes(values: list) -> None:
    packed = pack(*values)
    assert pack(*unpack(packed)) == packed


@given(st.lists(st.binary(max_size=70) | st.dictionaries(st.binary(max_size=5), st.binary())))
def test_raw_unpack_round_trips_bytes_exactly(values: list) -> None:
    assert_identical(unpack(pack(*values), raw=True), tuple(values))


@given(_ANY)
def test_every_truncation_of_one_packed_value_raises_unpack_error(value: object) -> None:
    packed = pack(value)
    for cut in range(1, len(packed)):
        with pytest.raises(UnpackError):
            unpack(packed[:cut])


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_random_bytes_unpack_or_raise_unpack_error_only(data: bytes) -> None:
    try:
        unpack(data)
    except UnpackError:
        pass


@given(_ANY, st.data())
def test_corrupted_messages_unpack_or_raise_unpack_error_only(
    value: object, data: st.DataObject
) -> None:
    packed = bytearray(pack(value))
    at = data.draw(st.integers(0, len(packed) - 1))
    packed[at] = data.draw(st.integers(0, 255))
    try:
        unpack(packed)
    except UnpackError:
        pass
