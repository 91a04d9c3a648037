"""One socket's send queue: high before low, no interleaving, WARNING at 1 MiB and each doubling."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from skypy._net.sendqueue import COALESCE_BYTES, WARNING_BYTES, SendQueue

MiB = 1 << 20


def send(queue: SendQueue, most: int | None = None) -> bytes:
    """One kernel write: peek, let the kernel take up to `most` bytes, consume."""
    view = queue.peek()
    taken = bytes(view[:most])
    queue.consume(len(taken))
    return taken


def drain(queue: SendQueue, most: int | None = None) -> bytes:
    """Write until the queue is empty, the kernel taking up to `most` bytes a time."""
    out = []
    while queue:
        out.append(send(queue, most))
    return b"".join(out)


def drain_warnings(queue: SendQueue) -> list[int | None]:
    """Write until the queue is empty, 64 KiB a time; return what each consume() said."""
    warnings = []
    while queue:
        view = queue.peek()
        warnings.append(queue.consume(min(len(view), 64 * 1024)))
    return warnings


def test_new_queue_is_empty() -> None:
    queue = SendQueue()
    assert len(queue) == 0
    assert not queue
    assert queue.peek() == b""


def test_len_counts_unsent_bytes() -> None:
    queue = SendQueue()
    queue.push(b"abc")
    queue.push(b"de", high=False)
    send(queue, 1)
    assert len(queue) == 4


def test_empty_packet_is_ignored() -> None:
    queue = SendQueue()
    assert queue.push(b"") is None
    assert not queue


def test_push_is_high_priority_by_default() -> None:
    queue = SendQueue()
    queue.push(b"low", high=False)
    queue.push(b"high")
    assert drain(queue) == b"highlow"


def test_high_packets_go_out_in_push_order() -> None:
    queue = SendQueue()
    for packet in (b"a", b"b", b"c"):
        queue.push(packet, high=True)
    assert drain(queue, 1) == b"abc"


def test_low_packets_go_out_in_push_order() -> None:
    queue = SendQueue()
    for packet in (b"a", b"b", b"c"):
        queue.push(packet, high=False)
    assert drain(queue, 1) == b"abc"


def test_high_packets_go_before_earlier_low_packets() -> None:
    queue = SendQueue()
    queue.push(b"low1", high=False)
    queue.push(b"high1", high=True)
    queue.push(b"low2", high=False)
    queue.push(b"high2", high=True)
    assert drain(queue) == b"high1high2low1low2"


def test_high_priority_waits_for_half_sent_low_packet() -> None:
    queue = SendQueue()
    queue.push(b"LOWPACKET", high=False)
    assert send(queue, 3) == b"LOW"
    queue.push(b"high", high=True)
    assert drain(queue) == b"PACKEThigh"


def test_half_sent_low_packet_finishes_before_other_low_packets_and_new_high_ones() -> None:
    queue = SendQueue()
    queue.push(b"first", high=False)
    queue.push(b"second", high=False)
    send(queue, 2)
    queue.push(b"HIGH", high=True)
    assert drain(queue) == b"rstHIGHsecond"


def test_low_packet_waits_for_all_high_packets_even_during_a_half_sent_one() -> None:
    queue = SendQueue()
    queue.push(b"HIGH1", high=True)
    send(queue, 2)
    queue.push(b"low", high=False)
    queue.push(b"HIGH2", high=True)
    assert drain(queue) == b"GH1HIGH2low"


def test_kernel_partial_writes_resume_mid_packet() -> None:
    queue = SendQueue()
    queue.push(b"0123456789")
    assert [send(queue, 4) for _ in range(3)] == [b"0123", b"4567", b"89"]
    assert not queue


def test_high_packet_pushed_during_a_send_waits_for_the_low_packet_the_kernel_started() -> None:
    queue = SendQueue()
    queue.push(b"lowA", high=False)
    queue.push(b"lowB", high=False)
    view = queue.peek()
    queue.push(b"HIGH", high=True)  # while the kernel has the view
    queue.consume(5)  # it took lowA and the first byte of lowB
    assert bytes(view[:5]) == b"lowAl"
    assert drain(queue) == b"owBHIGH"


def test_high_packet_pushed_during_a_send_passes_low_packets_the_kernel_did_not_start() -> None:
    queue = SendQueue()
    queue.push(b"lowA", high=False)
    queue.push(b"lowB", high=False)
    queue.peek()
    queue.push(b"HIGH", high=True)
    queue.consume(4)
    assert drain(queue) == b"HIGHlowB"


def test_peek_view_stays_valid_while_packets_are_pushed() -> None:
    queue = SendQueue()
    queue.push(b"abc")
    queue.push(b"def")
    view = queue.peek()
    queue.push(b"more")
    assert bytes(view) == b"abcdef"


def test_peek_hands_a_lone_packet_over_without_copying_it() -> None:
    queue = SendQueue()
    packet = b"x" * 1000
    queue.push(packet)
    assert queue.peek().obj is packet


def test_peek_hands_a_big_packet_over_alone_without_copying_it() -> None:
    queue = SendQueue()
    packet = b"x" * (COALESCE_BYTES + 1)
    queue.push(packet)
    queue.push(b"next")
    assert queue.peek().obj is packet


def test_peek_joins_small_packets_into_one_view() -> None:
    queue = SendQueue()
    for packet in (b"ab", b"cd", b"ef"):
        queue.push(packet)
    assert queue.peek() == b"abcdef"


def test_peek_joins_high_and_then_low_packets_in_wire_order() -> None:
    queue = SendQueue()
    queue.push(b"low", high=False)
    queue.push(b"HIGH", high=True)
    assert queue.peek() == b"HIGHlow"


def test_peek_joins_no_packet_that_would_pass_the_coalesce_limit() -> None:
    queue = SendQueue()
    queue.push(b"a" * (COALESCE_BYTES - 10))
    queue.push(b"b" * 10)
    queue.push(b"c")
    assert queue.peek() == b"a" * (COALESCE_BYTES - 10) + b"b" * 10


def test_peek_joins_no_low_packet_while_a_high_one_is_left_out() -> None:
    queue = SendQueue()
    queue.push(b"a" * (COALESCE_BYTES - 10), high=True)
    queue.push(b"b" * 20, high=True)
    queue.push(b"c", high=False)
    assert queue.peek() == b"a" * (COALESCE_BYTES - 10)


def test_peek_starts_with_the_rest_of_a_half_sent_packet() -> None:
    queue = SendQueue()
    queue.push(b"half", high=False)
    send(queue, 2)
    queue.push(b"HIGH", high=True)
    assert queue.peek() == b"lfHIGH"


def test_push_copies_a_buffer_the_writer_may_reuse() -> None:
    queue = SendQueue()
    buffer = bytearray(b"abc")
    queue.push(buffer)
    buffer[:] = b"xyz"
    assert drain(queue) == b"abc"


def test_consume_without_peek_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="peek"):
        SendQueue().consume(0)


def test_each_consume_needs_its_own_peek() -> None:
    queue = SendQueue()
    queue.push(b"abcd")
    queue.peek()
    queue.consume(1)
    with pytest.raises(RuntimeError, match="peek"):
        queue.consume(1)


def test_consume_of_more_than_was_peeked_is_an_error() -> None:
    queue = SendQueue()
    queue.push(b"abc")
    queue.peek()
    queue.push(b"def")
    with pytest.raises(ValueError, match="4 bytes of a 3-byte"):
        queue.consume(4)


def test_no_warning_below_1_mib() -> None:
    queue = SendQueue()
    assert queue.push(b"x" * (WARNING_BYTES - 1)) is None


def test_warns_with_the_queued_size_when_it_reaches_1_mib() -> None:
    queue = SendQueue()
    queue.push(b"x" * (WARNING_BYTES - 1))
    assert queue.push(b"xx") == WARNING_BYTES + 1


def test_warns_again_at_each_doubling() -> None:
    queue = SendQueue()
    chunk = b"x" * (MiB // 4)
    warnings = [queue.push(chunk) for _ in range(32)]
    assert [w for w in warnings if w is not None] == [1 * MiB, 2 * MiB, 4 * MiB, 8 * MiB]


def test_warns_once_for_a_push_that_passes_several_thresholds() -> None:
    queue = SendQueue()
    assert queue.push(b"x" * (5 * MiB)) == 5 * MiB
    assert queue.push(b"x" * MiB) is None
    assert queue.push(b"x" * (2 * MiB)) == 8 * MiB


def test_thresholds_stay_raised_while_the_queue_is_not_empty() -> None:
    queue = SendQueue()
    queue.push(b"x" * (2 * MiB))
    while len(queue) > MiB // 2:
        send(queue, MiB // 4)
    assert queue.push(b"x" * (3 * MiB // 2)) is None  # back at 2 MiB: already warned


def test_warns_zero_when_the_queue_drains_after_a_warning() -> None:
    queue = SendQueue()
    queue.push(b"x" * MiB)
    warnings = drain_warnings(queue)
    assert warnings[-1] == 0
    assert set(warnings[:-1]) == {None}


def test_no_zero_warning_when_a_queue_that_never_warned_drains() -> None:
    queue = SendQueue()
    queue.push(b"x" * 100)
    queue.peek()
    assert queue.consume(100) is None


def test_zero_warning_is_given_once_per_drain() -> None:
    queue = SendQueue()
    queue.push(b"x" * MiB)
    drain(queue)
    queue.push(b"y")
    queue.peek()
    assert queue.consume(1) is None


def test_thresholds_reset_when_the_queue_drains() -> None:
    queue = SendQueue()
    queue.push(b"x" * (3 * MiB))
    drain(queue)
    assert queue.push(b"x" * MiB) == MiB


def test_clear_drops_the_unsent_rest_and_says_how_much() -> None:
    queue = SendQueue()
    queue.push(b"abcdef")
    queue.push(b"ghi", high=False)
    send(queue, 2)
    assert queue.clear() == 7
    assert not queue
    assert queue.peek() == b""


def test_clear_gives_no_zero_warning_and_resets_thresholds() -> None:
    queue = SendQueue()
    queue.push(b"x" * (3 * MiB))
    queue.clear()
    assert queue.push(b"x" * MiB) == MiB


def test_consume_for_a_send_in_flight_when_the_queue_was_cleared_does_nothing() -> None:
    queue = SendQueue()
    queue.push(b"abc")
    queue.peek()
    queue.clear()
    assert queue.consume(3) is None
    assert not queue


def test_queue_works_after_clear() -> None:
    queue = SendQueue()
    queue.push(b"old", high=False)
    send(queue, 1)
    queue.clear()
    queue.push(b"new")
    assert drain(queue) == b"new"


packet_lists = st.lists(st.tuples(st.booleans(), st.binary(min_size=1, max_size=200)), max_size=30)


@given(packet_lists, st.integers(1, 300))
def test_everything_queued_goes_out_high_then_low_whatever_the_kernel_takes(
    packets: list[tuple[bool, bytes]], most: int
) -> None:
    queue = SendQueue()
    for high, packet in packets:
        queue.push(packet, high=high)
    high_first = sorted(packets, key=lambda packet: not packet[0])  # a stable sort
    expected = b"".join(packet for _, packet in high_first)
    assert drain(queue, most) == expected


@given(st.lists(st.one_of(st.integers(1, 3 * MiB), st.just(0)), max_size=40))
def test_warnings_come_at_new_doublings_and_zero_only_on_drain_after_one(steps: list[int]) -> None:
    """Each step pushes that many bytes, or (0) drains the queue."""
    queue = SendQueue()
    filler = b"x" * (3 * MiB)
    level = 0  # how many thresholds (1, 2, 4 MiB ...) the last warning had reached
    for size in steps:
        if size:
            warning = queue.push(filler[:size])
            doubling = len(queue).bit_length() - WARNING_BYTES.bit_length() + 1
            if doubling > level:
                assert warning == len(queue)
                level = doubling
            else:
                assert warning is None
        else:
            warnings = drain_warnings(queue)
            if warnings:
                assert warnings == [None] * (len(warnings) - 1) + [0 if level else None]
            level = 0


# Mostly small packets and writes, some big enough to meet the coalesce limit.
packet_sizes = st.one_of(st.integers(1, 100), st.integers(20_000, 70_000))
kernel_takes = st.one_of(st.integers(0, 250), st.integers(0, 140_000))


class WireOrder(RuleBasedStateMachine):
    """Pushes, kernel writes of any size, and pushes during a write, against a plain model:
    bytes go out one at a time, a new packet starting (high first) only when one ends."""

    def __init__(self) -> None:
        super().__init__()
        self.queue = SendQueue()
        self.high: list[bytes] = []
        self.low: list[bytes] = []
        self.current = b""  # the rest of the packet the model's wire has started
        self.serial = 0

    def packet(self, size: int) -> bytes:
        # Patternless contents, so any reordering or skip shows in the bytes.
        self.serial += 1
        return random.Random(self.serial).randbytes(size)

    def model_send(self, n: int) -> bytes:
        out = []
        while n:
            if not self.current:
                self.current = (self.high or self.low).pop(0)
            out.append(self.current[:n])
            self.current = self.current[n:]
            n -= len(out[-1])
        return b"".join(out)

    def model_push(self, packet: bytes, high: bool) -> None:
        (self.high if high else self.low).append(packet)

    @rule(high=st.booleans(), size=packet_sizes)
    def push(self, high: bool, size: int) -> None:
        packet = self.packet(size)
        self.queue.push(packet, high=high)
        self.model_push(packet, high)

    @rule(most=kernel_takes)
    def write(self, most: int) -> None:
        view = self.queue.peek()
        taken = min(most, len(view))
        assert bytes(view[:taken]) == self.model_send(taken)
        self.queue.consume(taken)

    @rule(most=kernel_takes, high=st.booleans(), size=packet_sizes)
    def push_during_write(self, most: int, high: bool, size: int) -> None:
        # The kernel copied its bytes before the push, as far as the wire can tell.
        view = self.queue.peek()
        packet = self.packet(size)
        self.queue.push(packet, high=high)
        taken = min(most, len(view))
        assert bytes(view[:taken]) == self.model_send(taken)
        self.queue.consume(taken)
        self.model_push(packet, high)

    @invariant()
    def same_size(self) -> None:
        assert len(self.queue) == len(self.current) + sum(map(len, self.high + self.low))

    def teardown(self) -> None:
        expected = self.model_send(len(self.queue))
        assert drain(self.queue, 4093) == expected


TestWireOrder = WireOrder.TestCase
TestWireOrder.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
