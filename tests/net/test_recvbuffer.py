"""One socket's receive buffer: exact reads, whole reads, lines, and the overflow limit."""

from __future__ import annotations

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from skypy._net.recvbuffer import RecvBuffer


def buffer_of(*chunks: bytes) -> RecvBuffer:
    buffer = RecvBuffer()
    for chunk in chunks:
        buffer.push(chunk)
    return buffer


def test_new_buffer_is_empty() -> None:
    buffer = RecvBuffer()
    assert len(buffer) == 0
    assert not buffer


def test_len_counts_unread_bytes() -> None:
    buffer = buffer_of(b"abc", b"de")
    buffer.take(1)
    assert len(buffer) == 4


def test_take_returns_exactly_n_bytes() -> None:
    buffer = buffer_of(b"abcdef")
    assert buffer.take(4) == b"abcd"
    assert buffer.take(2) == b"ef"


def test_take_returns_none_and_takes_nothing_when_fewer_bytes_are_buffered() -> None:
    buffer = buffer_of(b"abc")
    assert buffer.take(4) is None
    assert buffer.take(3) == b"abc"


def test_take_of_zero_bytes_returns_empty_bytes() -> None:
    assert RecvBuffer().take(0) == b""


def test_take_of_a_negative_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="-1"):
        RecvBuffer().take(-1)


def test_take_joins_bytes_from_several_chunks() -> None:
    buffer = buffer_of(b"ab", b"cd", b"ef", b"gh")
    assert buffer.take(1) == b"a"
    assert buffer.take(6) == b"bcdefg"
    assert buffer.take(1) == b"h"


def test_take_of_a_whole_chunk_hands_it_back_uncopied() -> None:
    chunk = b"x" * 1000
    assert buffer_of(chunk).take(1000) is chunk


def test_take_all_returns_everything_and_empties_the_buffer() -> None:
    buffer = buffer_of(b"ab", b"cd")
    buffer.take(1)
    assert buffer.take_all() == b"bcd"
    assert len(buffer) == 0


def test_take_all_of_an_empty_buffer_returns_empty_bytes() -> None:
    assert RecvBuffer().take_all() == b""


def test_take_line_returns_the_line_without_its_separator() -> None:
    buffer = buffer_of(b"hello\nworld\n")
    assert buffer.take_line() == b"hello"
    assert buffer.take_line() == b"world"
    assert len(buffer) == 0


def test_take_line_returns_none_and_takes_nothing_without_a_separator() -> None:
    buffer = buffer_of(b"partial")
    assert buffer.take_line() is None
    assert buffer.take_all() == b"partial"


def test_take_line_returns_an_empty_line_for_a_leading_separator() -> None:
    buffer = buffer_of(b"\nrest")
    assert buffer.take_line() == b""
    assert buffer.take_all() == b"rest"


def test_take_line_uses_the_given_separator() -> None:
    buffer = buffer_of(b"a\nb\r\nc")
    assert buffer.take_line(b"\r\n") == b"a\nb"


def test_take_line_finds_a_line_spread_over_chunks() -> None:
    buffer = buffer_of(b"hel", b"lo wo", b"rld\nnext")
    assert buffer.take_line() == b"hello world"
    assert buffer.take_all() == b"next"


def test_take_line_finds_a_separator_straddling_two_chunks() -> None:
    buffer = buffer_of(b"line\r", b"\nrest")
    assert buffer.take_line(b"\r\n") == b"line"
    assert buffer.take_all() == b"rest"


def test_take_line_finds_a_separator_spread_over_three_chunks() -> None:
    buffer = buffer_of(b"xa", b"b", b"cdy")
    assert buffer.take_line(b"abcd") == b"x"
    assert buffer.take_all() == b"y"


def test_take_line_finds_a_line_completed_after_a_miss() -> None:
    buffer = buffer_of(b"abc", b"def\r")
    assert buffer.take_line(b"\r\n") is None
    buffer.push(b"\nghi")
    assert buffer.take_line(b"\r\n") == b"abcdef"
    assert buffer.take_all() == b"ghi"


def test_take_line_with_another_separator_after_a_miss_searches_from_the_start() -> None:
    buffer = buffer_of(b"ab;cd", b"ef")
    assert buffer.take_line(b"\n") is None
    assert buffer.take_line(b";") == b"ab"


def test_take_line_after_a_miss_and_a_take_searches_from_the_new_start() -> None:
    buffer = buffer_of(b"a\r", b"bc")
    assert buffer.take_line(b"\r\n") is None
    assert buffer.take(2) == b"a\r"
    buffer.push(b"\r\n")
    assert buffer.take_line(b"\r\n") == b"bc"


def test_take_line_ignores_a_separator_in_bytes_already_taken() -> None:
    buffer = buffer_of(b"a\nbc", b"d")
    buffer.take(2)
    assert buffer.take_line() is None


def test_take_line_of_an_empty_separator_is_an_error() -> None:
    with pytest.raises(ValueError, match="separator"):
        RecvBuffer().take_line(b"")


def test_push_copies_a_buffer_the_reader_may_reuse() -> None:
    scratch = bytearray(b"abc")
    buffer = buffer_of(scratch)
    scratch[:] = b"xyz"
    assert buffer.take_all() == b"abc"


def test_push_never_reports_an_overflow_without_a_limit() -> None:
    assert RecvBuffer().push(b"x" * 10_000_000) is False


def test_push_reports_an_overflow_once_the_size_passes_the_limit() -> None:
    buffer = RecvBuffer(limit=4)
    assert buffer.push(b"ab") is False
    assert buffer.push(b"cd") is False  # at the limit, not past it
    assert buffer.push(b"e") is True


def test_limit_can_be_set_on_a_buffer_in_use() -> None:
    buffer = buffer_of(b"abc")
    buffer.limit = 3
    assert buffer.push(b"d") is True


def test_limit_counts_only_unread_bytes() -> None:
    buffer = RecvBuffer(limit=4)
    buffer.push(b"abcd")
    buffer.take(3)
    assert buffer.push(b"efg") is False


class ReadsMatchPlainBytes(RuleBasedStateMachine):
    """Pushes and reads in any order read the same as slicing one bytes object."""

    def __init__(self) -> None:
        super().__init__()
        self.buffer = RecvBuffer()
        self.model = b""

    # A small alphabet, so separators (self-overlapping "aab" included) are
    # found often and straddle chunk boundaries.
    @rule(chunk=st.binary(max_size=12).map(lambda b: bytes(b"ab\r\n"[x % 4] for x in b)))
    def push(self, chunk: bytes) -> None:
        self.buffer.push(chunk)
        self.model += chunk

    @rule(n=st.integers(0, 30))
    def take(self, n: int) -> None:
        expected = self.model[:n] if n <= len(self.model) else None
        assert self.buffer.take(n) == expected
        if expected is not None:
            self.model = self.model[n:]

    @rule(sep=st.sampled_from([b"\n", b"\r\n", b"ab", b"aab", b"\r\n\r\n"]))
    def take_line(self, sep: bytes) -> None:
        end = self.model.find(sep)
        expected = self.model[:end] if end >= 0 else None
        assert self.buffer.take_line(sep) == expected
        if expected is not None:
            self.model = self.model[end + len(sep) :]

    @rule()
    def take_all(self) -> None:
        assert self.buffer.take_all() == self.model
        self.model = b""

    @invariant()
    def same_size(self) -> None:
        assert len(self.buffer) == len(self.model)


TestReadsMatchPlainBytes = ReadsMatchPlainBytes.TestCase
TestReadsMatchPlainBytes.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
