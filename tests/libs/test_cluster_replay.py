"""Wire compatibility: skynet's captured request stream, replayed into a skypy node, gets skynet's answers."""

from __future__ import annotations

from collections import defaultdict

import pytest
import trio

from skypy.cluster.wire import ResponseDecoder
from skypy.netpack import PacketDecoder
from tests.helpers.cluster import Remote
from tests.helpers.vectors import cluster_capture

pytestmark = pytest.mark.slow  # the node that answers runs in a process of its own


def captured(direction: str) -> list[bytes]:
    """The capture's packets (length header included) sent in `direction`, in wire order."""
    return [packet for way, _, packet in cluster_capture() if way == direction]


def by_session(stream: bytes) -> dict[int, list[bytes]]:
    """Response packet bodies grouped by the session they answer, in order."""
    groups = defaultdict(list)
    for body in PacketDecoder().feed(stream):
        groups[int.from_bytes(body[:4], "little")].append(body)
    return dict(groups)


async def test_skynets_request_stream_gets_the_answers_skynet_gave(node, tmp_path):
    skynet = by_session(b"".join(captured("response")))
    remote = await Remote.start(tmp_path)  # store at :0000000a, registered as "store", as in the capture
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", remote.port)
        await stream.send_all(b"".join(captured("request")))
        packets, responses, received = PacketDecoder(), ResponseDecoder(), b""
        answered = set()
        with trio.fail_after(10):
            while answered != skynet.keys():
                chunk = await stream.receive_some()
                assert chunk, f"connection closed; answered only {sorted(answered)}"
                received += chunk
                for body in packets.feed(chunk):
                    if (response := responses.feed(body)) is not None:
                        answered.add(response.session)
        await stream.aclose()
    finally:
        await remote.stop()
    ours = by_session(received)
    for session, theirs in skynet.items():
        ok = theirs[0][4] != 0
        if ok or session != 2:
            # Byte for byte, multipart framing included. Only the text of
            # step 2's error (a Lua traceback position) is skynet's own.
            assert ours[session] == theirs, f"session {session}"
        else:
            assert ours[session][0][4] == 0 and b"store: fail requested" in ours[session][0]
