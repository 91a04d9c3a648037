"""skypy.cluster.wire against a real skynet capture, plus encoding rules, assembly and fuzzing."""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import given, settings, strategies as st

from skypy.cluster.wire import (
    PART_SIZE,
    ClusterProtocolError,
    MessageTooLarge,
    Request,
    RequestDecoder,
    Response,
    ResponseDecoder,
    encode_request,
    encode_response,
    encode_trace,
)
from skypy.netpack import PacketDecoder
from skypy.serialize import pack, unpack
from tests.helpers.vectors import cluster_capture

CAPTURE = cluster_capture()
CAPTURED_REQUESTS = [packet for direction, _, packet in CAPTURE if direction == "request"]
CAPTURED_RESPONSES = [packet for direction, _, packet in CAPTURE if direction == "response"]
# Environment-specific texts, rewritten in the capture; taken from it, not invented.
TRACE_TAG = next(p for _, label, p in CAPTURE if label == "trace")[3:].decode()
STEP2_ERROR = next(p for _, label, p in CAPTURE if label == "response_error")[7:]

ADDR = 0x0A  # the store service's handle on db
# The scenario of the capture header, one step per line:
# (target, session, push, args). Step 6a/7 are name queries: address 0, packed name.
SCENARIO_REQUESTS = {
    "1": ("@store", 1, False, ("echo", 1, "a", True)),
    "2": ("@store", 2, False, ("fail",)),
    "3": ("@store", 3, False, ("big",)),
    "4": ("@store", 4, False, ("echo", "x" * 70000)),
    "5": ("@store", 0, True, ("push", 42)),
    "6a": (0, 5, False, ("store",)),
    "6b": (ADDR, 6, False, ("echo", "byaddr")),
    "7": (0, 7, False, ("nosuch",)),
    "8": ("@nosuch", 8, False, ("echo", 1)),
    "9": (ADDR, 9, False, ("echo", "w" * 40000)),
    "10": ("@store", 10, True, ("push", "y" * 40000)),
    "11": (ADDR, 0, True, ("push", 7)),
    "12": (ADDR, 11, True, ("push", "z" * 40000)),
    "13": ("@store", 12, False, ("echo", "traced")),
    "14": ("@store", 13, False, ("pushed",)),
}
# Steps in the order their last packet reached db: step 10's parts were
# overtaken by steps 11 and 13 (see the capture header).
REQUEST_COMPLETION_ORDER = "1 2 3 4 5 6a 6b 7 8 9 11 13 10 12 14".split()
# (session, ok, values when ok / raw error text)
SCENARIO_RESPONSES = [
    (1, True, (1, "a", True)),
    (2, False, STEP2_ERROR),
    (3, True, ("0123456789" * 10000,)),
    (4, True, ("x" * 70000,)),
    (5, True, (ADDR,)),
    (6, True, ("byaddr",)),
    (7, False, b"name not found"),
    (8, False, b"Invalid name"),
    (9, True, ("w" * 40000,)),
    (12, True, ("traced",)),
    (13, True, (42, 7, "str:40000:y", "str:40000:z")),
]


def encode_scenario_request(step: str) -> list[bytes]:
    target, session, push, args = SCENARIO_REQUESTS[step]
    return encode_request(target, session, pack(*args), push=push)


def cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    """Split a stream at arbitrary points (taken modulo its length), as TCP may deliver it."""
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


def chunked(stream: bytes, size: int) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def decode(chunks: list[bytes], decoder: RequestDecoder | ResponseDecoder) -> list:
    """Run received chunks through netpack's framing and a decoder; return the whole events."""
    reader = PacketDecoder()
    events = [decoder.feed(body) for chunk in chunks for body in reader.feed(chunk)]
    return [event for event in events if event is not None]


# --- encoders against the capture ----------------------------------------------


def test_the_capture_is_read_whole() -> None:
    assert len(CAPTURED_REQUESTS) == 25 and len(CAPTURED_RESPONSES) == 20


def test_request_encoders_reproduce_every_captured_request_packet() -> None:
    encoded = [packet for step in SCENARIO_REQUESTS for packet in encode_scenario_request(step)]
    encoded.append(encode_trace(TRACE_TAG))
    assert Counter(encoded) == Counter(CAPTURED_REQUESTS)


@pytest.mark.parametrize("step", list(SCENARIO_REQUESTS))
def test_request_packets_appear_in_encoding_order(step: str) -> None:
    positions = [CAPTURED_REQUESTS.index(packet) for packet in encode_scenario_request(step)]
    assert positions == sorted(positions)


def test_response_encoders_reproduce_the_captured_response_stream() -> None:
    encoded = []
    for session, ok, values in SCENARIO_RESPONSES:
        encoded += encode_response(session, ok, pack(*values) if ok else values)
    assert encoded == CAPTURED_RESPONSES


def test_trace_packet_is_type_4_then_the_raw_tag() -> None:
    assert encode_trace("vec") == bytes.fromhex("0004") + b"\x04vec"


# --- decoders replaying the capture --------------------------------------------


@pytest.mark.parametrize("chunk", [1 << 20, 4096, 7])
def test_replayed_request_stream_decodes_to_the_scenario_calls(chunk: int) -> None:
    requests = decode(chunked(b"".join(CAPTURED_REQUESTS), chunk), RequestDecoder())
    seen = [(r.target, r.session, r.push, unpack(r.msg)) for r in requests]
    # A push is reported with session 0, whatever tag its multipart parts carried.
    expected = [
        (target, 0 if push else session, push, args)
        for target, session, push, args in (SCENARIO_REQUESTS[s] for s in REQUEST_COMPLETION_ORDER)
    ]
    assert seen == expected


def test_replayed_trace_tag_attaches_to_the_next_call_only() -> None:
    requests = decode(CAPTURED_REQUESTS, RequestDecoder())
    traced = [(r.session, r.trace) for r in requests if r.trace is not None]
    assert traced == [(12, "(host0001-db-13):00000008-1")]


@pytest.mark.parametrize("chunk", [1 << 20, 4096, 7])
def test_replayed_response_stream_decodes_to_the_scenario_replies(chunk: int) -> None:
    responses = decode(chunked(b"".join(CAPTURED_RESPONSES), chunk), ResponseDecoder())
    seen = [(r.session, r.ok, unpack(r.msg) if r.ok else r.msg) for r in responses]
    assert seen == SCENARIO_RESPONSES


def test_captured_name_query_is_a_call_to_address_0_with_the_packed_name() -> None:
    body = next(p for _, label, p in CAPTURE if label == "name_query")[2:]
    assert RequestDecoder().feed(body) == Request(0, 5, pack("store"))


# --- encoding rules -------------------------------------------------------------


def test_payload_under_32k_is_a_single_packet() -> None:
    (packet,) = encode_request(ADDR, 1, bytes(PART_SIZE - 1))
    assert len(packet) == 2 + 9 + PART_SIZE - 1


def test_payload_of_32k_is_a_header_and_one_last_part() -> None:
    header, last = encode_request(ADDR, 1, bytes(PART_SIZE))
    assert header == bytes.fromhex("000d" "01" "0a000000" "01000000" "00800000")
    assert last[:7] == bytes.fromhex("8005" "03" "01000000")


def test_single_packet_push_carries_session_0() -> None:
    (packet,) = encode_request("@s", 99, b"m", push=True)
    assert packet == bytes.fromhex("0009" "8002") + b"@s" + bytes(4) + b"m"


def test_multipart_push_needs_a_session_to_tag_its_parts() -> None:
    with pytest.raises(ClusterProtocolError, match="non-zero session"):
        encode_request(ADDR, 0, bytes(PART_SIZE), push=True)


def test_call_with_session_0_raises() -> None:
    with pytest.raises(ClusterProtocolError, match="non-zero session"):
        encode_request(ADDR, 0, b"m")


@pytest.mark.parametrize("name", ["", "n" * 256])
def test_name_must_be_1_to_255_bytes(name: str) -> None:
    with pytest.raises(ClusterProtocolError, match="1..255 bytes"):
        encode_request(name, 1, b"m")


def test_address_beyond_32_bits_raises_naming_it() -> None:
    with pytest.raises(ClusterProtocolError, match="address 4294967296"):
        encode_request(1 << 32, 1, b"m")


def test_error_text_is_cut_to_one_part() -> None:
    (packet,) = encode_response(1, False, b"e" * (PART_SIZE + 10))
    assert len(packet) == 2 + 5 + PART_SIZE


def test_ok_payload_of_exact_parts_ends_with_a_full_last_part() -> None:
    packets = encode_response(1, True, bytes(2 * PART_SIZE))
    assert [p[6] for p in packets] == [2, 3, 4]
    assert len(packets[-1]) == 2 + 5 + PART_SIZE


# --- decoding rules -------------------------------------------------------------


def test_trace_attaches_to_the_next_request_header_not_to_other_sessions_parts() -> None:
    decoder = RequestDecoder()
    first_header, *first_parts = encode_request(ADDR, 1, bytes(PART_SIZE + 1))
    second_header, *second_parts = encode_request("@s", 2, bytes(PART_SIZE))
    stream = [
        first_header,
        encode_trace("t"),
        first_parts[0],
        second_header,
        *first_parts[1:],
        *second_parts,
    ]
    events = [decoder.feed(packet[2:]) for packet in stream]
    done = [e for e in events if e is not None]
    assert [(r.session, r.trace) for r in done] == [(1, None), (2, "t")]


def test_multipart_push_is_reported_with_session_0() -> None:
    decoder = RequestDecoder()
    events = [decoder.feed(p[2:]) for p in encode_request("@s", 7, b"y" * PART_SIZE, push=True)]
    assert events[-1] == Request("@s", 0, b"y" * PART_SIZE)
    assert events[-1].push


HEADER_SESSION1_SIZE1 = b"\x01" + bytes(4) + b"\x01\0\0\0\x01\0\0\0"
HEADER_SESSION1_SIZE3 = b"\x01" + bytes(4) + b"\x01\0\0\0\x03\0\0\0"


MALFORMED_REQUESTS = [
    ([b""], "empty request packet"),
    ([b"\x05"], "unknown request packet type 0x05"),
    ([b"\x40" + bytes(8)], "unknown request packet type 0x40"),
    ([b"\x00\x0a\x00\x00\x00\x01"], "request packet of 6 bytes, needs at least 9"),
    ([b"\x80\x05ab"], "request by name packet of 4 bytes, needs at least 7"),
    ([b"\x80\x01\xff" + bytes(4)], "not UTF-8"),
    ([b"\x01" + bytes(12) + b"x"], "exactly 13"),
    ([b"\x01" + bytes(12)], "multipart call with session 0"),
    ([b"\x02\x01\x00\x00\x00x"], "session 1, which has no multipart header"),
    ([b"\x03\x01\x00"], "request part packet of 3 bytes"),
    ([HEADER_SESSION1_SIZE1] * 2, "session 1 began twice"),
    ([HEADER_SESSION1_SIZE1, b"\x02\x01\0\0\0xy"], "exceed the announced 1 bytes"),
    ([HEADER_SESSION1_SIZE3, b"\x03\x01\0\0\0xy"], "ended at 2 of the announced 3"),
]
MALFORMED_RESPONSES = [
    ([b"\x01\0\0"], "response packet of 3 bytes, needs at least 5"),
    ([b"\x01\0\0\0\x05"], "unknown response type 5 for session 1"),
    ([b"\x01\0\0\0\x02\x01\0\0"], "exactly 9"),
    ([b"\x01\0\0\0\x03x"], "response part for session 1"),
    ([b"\x01\0\0\0\x02\x05\0\0\0", b"\x01\0\0\0\x04abc"], "ended at 3 of the announced 5"),
]


@pytest.mark.parametrize(
    ("decoder_type", "bodies", "complaint"),
    [(RequestDecoder, *case) for case in MALFORMED_REQUESTS]
    + [(ResponseDecoder, *case) for case in MALFORMED_RESPONSES],
)
def test_malformed_packets_raise_cluster_protocol_error_naming_the_fault(
    decoder_type: type[RequestDecoder | ResponseDecoder], bodies: list[bytes], complaint: str
) -> None:
    decoder = decoder_type()
    with pytest.raises(ClusterProtocolError, match=complaint):
        for body in bodies:
            decoder.feed(body)


# --- properties -----------------------------------------------------------------

# Sizes around the part boundaries, kept moderate so the suite stays fast.
_SIZES = st.sampled_from(
    [0, 1, 31, PART_SIZE - 1, PART_SIZE, PART_SIZE + 1, 2 * PART_SIZE, 40000]
) | st.integers(0, 3 * PART_SIZE)
_TARGETS = st.integers(0, 0xFFFF_FFFF) | st.text(min_size=1, max_size=20)


def _payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@st.composite
def _interleaved(draw: st.DrawFn, messages: list[list[bytes]]) -> tuple[bytes, list[int]]:
    """Interleave the messages' packets, each in its order; return stream and completion order."""
    queues = [list(packets) for packets in messages]
    stream = []
    completed = []
    while any(queues):
        i = draw(st.sampled_from([i for i, q in enumerate(queues) if q]))
        stream.append(queues[i].pop(0))
        if not queues[i]:
            completed.append(i)
    return b"".join(stream), completed


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(_TARGETS, st.booleans(), _SIZES, st.integers()), min_size=1, max_size=4),
    st.lists(st.integers(min_value=0), max_size=12),
    st.data(),
)
def test_requests_round_trip_through_interleaved_chunked_streams(
    specs: list[tuple[int | str, bool, int, int]], cuts: list[int], data: st.DataObject
) -> None:
    expected = [
        Request(target, 0 if push else session, _payload(size, seed))
        for session, (target, push, size, seed) in enumerate(specs, 1)
    ]
    messages = [
        encode_request(r.target, session, r.msg, push=r.push)
        for session, r in enumerate(expected, 1)
    ]
    stream, completed = data.draw(_interleaved(messages))
    assert decode(cut(stream, cuts), RequestDecoder()) == [expected[i] for i in completed]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), _SIZES, st.integers()), min_size=1, max_size=4),
    st.lists(st.integers(min_value=0), max_size=12),
    st.data(),
)
def test_responses_round_trip_through_interleaved_chunked_streams(
    specs: list[tuple[bool, int, int]], cuts: list[int], data: st.DataObject
) -> None:
    expected = [
        Response(session, ok, _payload(min(size, PART_SIZE) if not ok else size, seed))
        for session, (ok, size, seed) in enumerate(specs, 1)
    ]
    messages = [encode_response(r.session, r.ok, r.msg) for r in expected]
    stream, completed = data.draw(_interleaved(messages))
    assert decode(cut(stream, cuts), ResponseDecoder()) == [expected[i] for i in completed]


@pytest.mark.parametrize("decoder_type", [RequestDecoder, ResponseDecoder])
@settings(max_examples=300)
@given(st.lists(st.binary(max_size=24), max_size=6))
def test_garbage_bodies_raise_cluster_protocol_error_only(
    decoder_type: type[RequestDecoder | ResponseDecoder], bodies: list[bytes]
) -> None:
    decoder = decoder_type()
    try:
        for body in bodies:
            decoder.feed(body)
    except ClusterProtocolError:
        pass


def bodies(packets):
    return [body for packet in packets for body in PacketDecoder().feed(packet)]


def test_a_bounded_decoder_takes_the_captured_requests_whole():
    decoder = RequestDecoder(max_size=100_000)
    assert sum(decoder.feed(body) is not None for body in bodies(CAPTURED_REQUESTS)) > 0


def test_a_multipart_request_announcing_more_than_max_size_is_too_large():
    header = bodies(encode_request("@store", 1, bytes(70_000)))[0]
    with pytest.raises(MessageTooLarge, match="announces 70000 bytes, over the limit of 65536"):
        RequestDecoder(max_size=65536).feed(header)


def test_unfinished_requests_holding_more_than_max_size_together_are_too_large():
    decoder = RequestDecoder(max_size=100_000)
    with pytest.raises(MessageTooLarge, match="unfinished multipart requests hold"):
        for session in (1, 2, 3):
            unfinished = bodies(encode_request("@store", session, bytes(90_000)))[:3]  # header, 2 of 3 parts
            for body in unfinished:
                decoder.feed(body)


def test_a_finished_request_no_longer_counts_against_max_size():
    decoder = RequestDecoder(max_size=100_000)
    for session in (1, 2, 3):
        *_, request = [decoder.feed(body) for body in bodies(encode_request("@store", session, bytes(90_000)))]
        assert request.msg == bytes(90_000)
