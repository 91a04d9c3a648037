"""skypy.websocket's protocol, sans I/O: message assembly, the size limit, pings and the closing handshake."""

from hypothesis import given, strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Pong, Request, TextMessage

from skypy.websocket._protocol import ClientHandshake, accept


def pair(max_message_size: int = 1 << 20):
    """A wsproto client, and skypy's server side of the same connection."""
    client = WSConnection(ConnectionType.CLIENT)
    handshake = client.send(Request(host="h", target="/ws"))
    head, _, _ = handshake.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    response, server = accept({k.lower(): v for k, v in headers.items()}, "/ws", b"", max_message_size)
    client.receive_data(response)
    assert isinstance(next(client.events()), AcceptConnection)
    return client, server


def frames(client: WSConnection, data: bytes):
    client.receive_data(data)
    return list(client.events())


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5))
def test_a_fragmented_message_arrives_whole(parts):
    client, server = pair()
    wire = b"".join(client.send(TextMessage(p, message_finished=i == len(parts) - 1)) for i, p in enumerate(parts))
    server.receive(wire)
    assert list(server.messages) == ["".join(parts)]


@given(st.binary(min_size=1, max_size=200), st.integers(1, 50))
def test_bytes_split_anywhere_make_the_same_message(payload, step):
    client, server = pair()
    wire = client.send(BytesMessage(payload))
    for i in range(0, len(wire), step):
        server.receive(wire[i : i + step])
    assert list(server.messages) == [payload]


def test_a_message_over_the_limit_is_closed_with_1009_before_it_has_all_come():
    client, server = pair(max_message_size=100)
    wire = client.send(BytesMessage(b"x" * 10_000))
    reply = server.receive(wire[:200])  # the header and a part of the payload
    assert server.closed.code == 1009 and not server.messages
    (close,) = frames(client, reply)
    assert isinstance(close, CloseConnection) and close.code == 1009


def test_a_ping_is_answered_with_a_pong():
    client, server = pair()
    (pong,) = frames(client, server.receive(client.send(Ping(b"p"))))
    assert isinstance(pong, Pong) and pong.payload == b"p"


def test_the_peers_close_is_answered_and_remembered():
    client, server = pair()
    (close,) = frames(client, server.receive(client.send(CloseConnection(4001, "bye"))))
    assert (close.code, server.closed.code, server.closed.reason, server.closed.by_peer) == (4001, 4001, "bye", True)
    assert server.finished


def test_a_transport_ending_without_a_close_frame_is_1006():
    _, server = pair()
    server.transport_ended()
    assert server.closed.code == 1006


def test_the_client_handshake_is_accepted_by_the_server_side():
    handshake = ClientHandshake("h:1", "/ws")
    head = handshake.request.partition(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
    response, _ = accept({k.lower(): v for k, v in (line.split(": ", 1) for line in head)}, "/ws", b"", 1024)
    assert handshake.receive(response, 1024) is not None
