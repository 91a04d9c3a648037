"""netpack framing: 2-byte big-endian length + body, decoded across any read boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from skypy.netpack import HEADER_SIZE, MAX_BODY, PacketDecoder, PacketTooLarge, pack


def test_pack_prefixes_the_body_with_its_big_endian_length() -> None:
    assert pack(b"hello") == b"\x00\x05hello"
    assert pack(b"x" * 258)[:2] == b"\x01\x02"


def test_pack_frames_an_empty_body() -> None:
    assert pack(b"") == b"\x00\x00"


def test_pack_frames_the_largest_body() -> None:
    frame = pack(b"x" * MAX_BODY)
    assert frame[:2] == b"\xff\xff"
    assert len(frame) == HEADER_SIZE + 65535


def test_pack_accepts_any_bytes_like_body() -> None:
    assert pack(bytearray(b"ab")) == pack(memoryview(b"ab")) == b"\x00\x02ab"


def test_pack_refuses_a_body_over_65535_bytes_naming_its_size() -> None:
    with pytest.raises(PacketTooLarge, match="65536 bytes") as caught:
        pack(b"x" * 65536)
    assert caught.value.size == 65536


def test_packet_too_large_is_a_value_error() -> None:
    assert issubclass(PacketTooLarge, ValueError)


def test_decoder_returns_a_whole_packet_from_one_read() -> None:
    assert PacketDecoder().feed(pack(b"hello")) == [b"hello"]


def test_decoder_returns_every_packet_of_one_read_in_order() -> None:
    assert PacketDecoder().feed(pack(b"a") + pack(b"bc") + pack(b"def")) == [b"a", b"bc", b"def"]


def test_decoder_returns_an_empty_body_for_a_zero_length_header() -> None:
    assert PacketDecoder().feed(b"\x00\x00" + pack(b"a")) == [b"", b"a"]


def test_decoder_joins_a_body_split_across_reads() -> None:
    decoder = PacketDecoder()
    frame = pack(b"hello world")
    assert decoder.feed(frame[:6]) == []
    assert decoder.feed(frame[6:]) == [b"hello world"]


def test_decoder_joins_a_header_split_in_the_middle() -> None:
    decoder = PacketDecoder()
    frame = pack(b"x" * 300)
    assert decoder.feed(frame[:1]) == []
    assert decoder.feed(frame[1:]) == [b"x" * 300]


def test_decoder_finishes_a_split_packet_and_decodes_the_rest_of_the_read() -> None:
    decoder = PacketDecoder()
    stream = pack(b"first") + pack(b"second") + pack(b"third")
    assert decoder.feed(stream[:4]) == []
    assert decoder.feed(stream[4:]) == [b"first", b"second", b"third"]


def test_decoder_decodes_the_largest_packet_fed_in_pieces() -> None:
    decoder = PacketDecoder()
    frame = pack(b"y" * MAX_BODY)
    pieces = [frame[i : i + 1000] for i in range(0, len(frame), 1000)]
    packets = [packet for piece in pieces for packet in decoder.feed(piece)]
    assert packets == [b"y" * MAX_BODY]


def test_decoder_pending_counts_held_bytes_header_included() -> None:
    decoder = PacketDecoder()
    decoder.feed(pack(b"done") + pack(b"hello")[:4])
    assert decoder.pending == 4


def test_decoder_gives_up_its_unfinished_frame_and_starts_afresh() -> None:
    decoder = PacketDecoder()
    decoder.feed(pack(b"done") + pack(b"hello")[:4])
    assert decoder.take_pending() == pack(b"hello")[:4]
    assert decoder.pending == 0
    assert decoder.feed(pack(b"next")) == [b"next"]


def test_decoder_holds_nothing_after_whole_packets() -> None:
    decoder = PacketDecoder()
    decoder.feed(pack(b"a")[:1])
    decoder.feed(pack(b"a")[1:])
    assert decoder.pending == 0


def test_decoder_feed_of_nothing_returns_nothing() -> None:
    decoder = PacketDecoder()
    assert decoder.feed(b"") == []
    assert decoder.pending == 0


def test_decoder_packets_do_not_change_when_the_fed_buffer_is_reused() -> None:
    decoder = PacketDecoder()
    buffer = bytearray(pack(b"abc") + pack(b"de")[:3])
    packets = decoder.feed(buffer)
    buffer[:] = b"\x00" * len(buffer)
    assert packets == [b"abc"]
    assert decoder.feed(b"e") == [b"de"]


def test_decoder_returns_bytes() -> None:
    decoder = PacketDecoder()
    packets = decoder.feed(memoryview(pack(b"ab") + pack(b"cd")[:3])) + decoder.feed(b"d")
    assert [type(packet) for packet in packets] == [bytes, bytes]


bodies = st.lists(st.binary(max_size=300), max_size=20)


@given(bodies, st.data())
def test_decoder_returns_the_packed_bodies_however_the_stream_is_cut(
    packets: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(pack(body) for body in packets)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    decoder = PacketDecoder()
    decoded = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoded += decoder.feed(stream[start:stop])
    assert decoded == packets
    assert decoder.pending == 0


@given(bodies, st.data())
def test_decoder_pending_is_what_follows_the_last_whole_packet(
    packets: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(pack(body) for body in packets)
    cut = data.draw(st.integers(0, len(stream)))
    decoder = PacketDecoder()
    decoded = decoder.feed(stream[:cut])
    whole = sum(HEADER_SIZE + len(body) for body in decoded)
    assert decoded == packets[: len(decoded)]
    assert decoder.pending == cut - whole
