"""skypy.http's server protocol, sans I/O: bytes in, events and response bytes out."""

import h11
import pytest
from hypothesis import given, strategies as st

from skypy.http._serverproto import Closed, Limits, NeedData, Phase, Ready, Reject, Send, ServerProtocol

GET = b"GET /a?x=1&y=two HTTP/1.1\r\nHost: h\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n"
POST = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"


def feed(protocol: ServerProtocol, *chunks: bytes):
    """Feed `chunks`, returning the events up to the first NeedData after the last, or to a
    request (the next waits for its answer), a rejection or the end."""
    events = []
    for chunk in chunks:
        protocol.receive(chunk)
        while not isinstance(event := protocol.next_event(), NeedData):
            events.append(event)
            if isinstance(event, (Ready, Reject, Closed)):
                return events
    return events


def answer(protocol: ServerProtocol, body: bytes = b"ok") -> bytes:
    return protocol.respond(200, {"Content-Type": "text/plain"}, body)


def h11_answer(protocol: ServerProtocol, status: int, headers: dict[str, str], body: bytes) -> bytes:
    """The response made by h11's send path, event by event."""
    return protocol.head(status, headers, len(body)) + protocol.body(body) + protocol.end()


def test_a_request_comes_with_its_path_query_and_headers():
    (ready,) = feed(ServerProtocol(), GET)
    request = ready.request
    assert (request.method, request.path, request.query) == ("GET", "/a", {"x": "1", "y": "two"})
    assert request.headers["x-multi"] == "1, 2"
    assert request.target == "/a?x=1&y=two"


@given(st.lists(st.integers(1, len(POST) - 1), max_size=6))
def test_a_request_split_anywhere_reads_the_same(cuts):
    cuts = sorted(set(cuts))
    pieces = [POST[a:b] for a, b in zip([0, *cuts], [*cuts, len(POST)], strict=True)]
    (ready,) = feed(ServerProtocol(), *pieces)
    assert (ready.request.method, ready.request.body) == ("POST", b"hello")


def test_a_chunked_request_body_is_joined():
    chunked = b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    (ready,) = feed(ServerProtocol(), chunked)
    assert ready.request.body == b"abcde"


def test_pipelined_requests_come_one_cycle_at_a_time():
    protocol = ServerProtocol()
    first = feed(protocol, GET + POST)
    assert [e.request.method for e in first] == ["GET"]
    answer(protocol)
    assert protocol.next_request()
    assert protocol.next_event().request.method == "POST"


def test_the_phase_says_which_timeout_applies():
    protocol = ServerProtocol()
    assert protocol.next_event() == NeedData(Phase.IDLE)
    protocol.receive(b"GET / HT")
    assert protocol.next_event() == NeedData(Phase.HEAD)
    protocol.receive(b"TP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na")
    assert protocol.next_event() == NeedData(Phase.BODY)


def test_a_head_must_be_whole_within_the_header_timeout_of_its_first_byte():
    protocol = ServerProtocol(Limits(header_timeout=10.0, idle_timeout=60.0))
    assert protocol.wait_time(Phase.IDLE, now=100.0) == 60.0
    assert protocol.wait_time(Phase.HEAD, now=105.0) == 10.0
    assert protocol.wait_time(Phase.HEAD, now=112.0) == 3.0  # bytes trickling in do not extend it
    assert protocol.wait_time(Phase.HEAD, now=120.0) == 0.0
    assert protocol.wait_time(Phase.BODY, now=121.0) == 60.0


def test_a_timeout_mid_request_is_408_but_idle_is_silent():
    protocol = ServerProtocol()
    assert protocol.timed_out(Phase.IDLE) == b""
    assert protocol.timed_out(Phase.HEAD).startswith(b"HTTP/1.1 408 ")


def test_a_malformed_request_line_is_400():
    (reject,) = feed(ServerProtocol(), b"NOT A REQUEST\r\n\r\n")
    assert reject.status == 400 and b"connection: close" in reject.data


def test_a_declared_body_over_the_limit_is_413_before_any_of_it():
    (reject,) = feed(ServerProtocol(), b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1073741824\r\n\r\n")
    assert reject.status == 413


def test_a_chunked_body_over_the_limit_is_413():
    protocol = ServerProtocol(Limits(max_body_size=4))
    head = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    (reject,) = feed(protocol, head, b"3\r\nabc\r\n", b"3\r\ndef\r\n")
    assert reject.status == 413


def test_a_head_over_the_limit_is_431():
    protocol = ServerProtocol(Limits(max_header_size=1024))
    (reject,) = feed(protocol, b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 2048)
    assert reject.status == 431


def test_expect_100_continue_is_answered_before_the_body():
    protocol = ServerProtocol()
    events = feed(protocol, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert events == [Send(b"HTTP/1.1 100 \r\n\r\n")]
    assert feed(protocol, b"hi")[0].request.body == b"hi"


def test_a_head_request_gets_the_headers_and_no_body():
    protocol = ServerProtocol()
    feed(protocol, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    out = answer(protocol, b"twelve bytes")
    assert out.endswith(b"content-length: 12\r\n\r\n")


def test_a_streamed_body_is_chunked_for_http_1_1():
    protocol = ServerProtocol()
    feed(protocol, GET)
    out = protocol.head(200, {}, None) + protocol.body(b"abc") + protocol.end()
    assert b"Transfer-Encoding: chunked" in out and out.endswith(b"3\r\nabc\r\n0\r\n\r\n")


def test_connection_close_ends_keep_alive():
    protocol = ServerProtocol()
    feed(protocol, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    answer(protocol)
    assert not protocol.next_request()


def test_an_error_before_the_head_is_a_500_that_keeps_the_connection():
    protocol = ServerProtocol()
    feed(protocol, GET)
    assert protocol.error(500).startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert protocol.next_request()


def test_an_upgrade_request_is_ready_with_the_protocol_and_the_bytes_after_it():
    protocol = ServerProtocol()
    upgrade = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n"
    (ready,) = feed(protocol, upgrade + b"\x81\x00")
    assert ready.upgrade == "websocket"
    assert protocol.upgraded() == b"\x81\x00"


def test_the_peer_closing_between_requests_is_closed():
    protocol = ServerProtocol()
    assert feed(protocol, b"") == [Closed()]


def test_responses_parse_back_as_http():
    protocol = ServerProtocol()
    feed(protocol, GET)
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("host", "h")]))
    client.send(h11.EndOfMessage())
    client.receive_data(answer(protocol, b"body"))
    response = client.next_event()
    assert (response.status_code, bytes(client.next_event().data)) == (200, b"body")


REQUESTS = [
    GET,
    b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi",
]
NAMES = st.from_regex(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+", fullmatch=True) | st.sampled_from(
    ["Content-Length", "transfer-encoding", "Connection", "Content-Type"]
)
VALUES = st.from_regex(r"([!-~\x80-\xff]+([ \t]+[!-~\x80-\xff]+)*)?", fullmatch=True)


@given(
    st.sampled_from(REQUESTS),
    st.integers(200, 999) | st.sampled_from([204, 304]),
    st.dictionaries(NAMES, VALUES, max_size=4),
    st.binary(max_size=20),
)
def test_respond_makes_the_bytes_h11_makes_and_the_same_next_state(request, status, headers, body):
    ours, theirs = ServerProtocol(), ServerProtocol()
    feed(ours, request)
    feed(theirs, request)
    try:
        expected = h11_answer(theirs, status, headers, body)
    except h11.LocalProtocolError:  # a Content-Length the body does not have, or one where none may be
        with pytest.raises(h11.LocalProtocolError):
            ours.respond(status, headers, body)
        return
    assert ours.respond(status, headers, body) == expected
    assert ours.next_request() == theirs.next_request()
    if theirs.next_request():
        assert ours.next_event() == theirs.next_event() == NeedData(Phase.IDLE)
        follow = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
        assert feed(ours, follow) == feed(theirs, follow)


@pytest.mark.parametrize("value", ["a\r\nset-cookie: x=1", "a\nb", " padded"])
def test_a_response_header_value_h11_refuses_is_refused(value):
    protocol = ServerProtocol()
    feed(protocol, GET)
    with pytest.raises(h11.LocalProtocolError):
        protocol.respond(200, {"x-value": value}, b"")


def test_a_request_pipelined_before_the_peer_closed_is_read_and_then_the_end():
    protocol = ServerProtocol()
    protocol.receive(GET + POST)
    protocol.receive(b"")
    assert protocol.next_event().request.method == "GET"
    answer(protocol)
    assert protocol.next_request()
    assert protocol.next_event().request.method == "POST"
    answer(protocol)
    assert protocol.next_request()
    assert protocol.next_event() == Closed()
