"""The socket rules without sockets: ids, states, and which events each transition posts."""

import pytest

from skypy._net.table import CLOSE, CONNECT, ERROR, ID_MAX, Conn, Effect, SocketTable, State
from skypy.errors import SocketError

OWNER = 0x0A


def connected(id=1):
    conn = Conn(id, "tcp", State.CONNECTING, OWNER)
    conn.opened_as(("127.0.0.1", 9))
    return conn


def events(effects):
    return [e for e in effects if type(e) is tuple]


def test_ids_increase_and_are_not_reused_until_they_wrap():
    table = SocketTable()
    first = table.new("tcp", State.CONNECTING, OWNER).id
    table.release(first)
    second = table.new("tcp", State.CONNECTING, OWNER).id
    assert (first, second) == (1, 2)


def test_ids_wrap_skipping_those_still_in_use():
    table = SocketTable()
    table.new("tcp", State.CONNECTING, OWNER)  # id 1 stays live
    table._last_id = ID_MAX - 1
    assert table.new("tcp", State.CONNECTING, OWNER).id == ID_MAX
    assert table.new("tcp", State.CONNECTING, OWNER).id == 2


def test_connecting_succeeds_with_connect_and_reading():
    conn = Conn(1, "tcp", State.CONNECTING, OWNER)
    effects = conn.opened_as(("10.0.0.1", 80))
    assert conn.state is State.CONNECTED
    assert effects == [(CONNECT, 1, ("10.0.0.1", 80)), Effect.READ]


def test_writes_queued_while_connecting_are_flushed_once_connected():
    conn = Conn(1, "tcp", State.CONNECTING, OWNER)
    conn.queue.push(b"early")
    assert Effect.FLUSH in conn.opened_as(("10.0.0.1", 80))


def test_a_bound_listener_waits_for_start_before_accepting():
    conn = Conn(1, "listen", State.OPENING, OWNER)
    assert conn.opened_as(("0.0.0.0", 8000)) == [(CONNECT, 1, ("0.0.0.0", 8000))]
    assert conn.state is State.LISTEN
    assert Effect.READ in conn.start(OWNER)


def test_close_with_nothing_queued_closes_now_and_posts_close():
    conn = connected()
    effects = conn.close((OWNER, 5))
    assert conn.state is State.CLOSED
    assert effects == [Effect.CLOSE_FD, (CLOSE, 1), Effect.NOTIFY, Effect.RELEASE]
    assert conn.closers == [(OWNER, 5)]


def test_close_with_a_queue_half_closes_and_completes_when_drained():
    conn = connected()
    conn.queue.push(b"pending")
    assert conn.close((OWNER, 5)) == [Effect.FLUSH]
    assert conn.state is State.HALFCLOSE and not conn.writable
    view = conn.queue.peek()
    conn.queue.consume(len(view))
    assert conn.drained() == [Effect.CLOSE_FD, (CLOSE, 1), Effect.NOTIFY, Effect.RELEASE]


def test_halfclose_discards_input():
    conn = connected()
    conn.queue.push(b"pending")
    conn.close(None)
    assert conn.received(10) is False
    assert conn.bytes_read == 10


def test_second_close_while_draining_waits_with_the_first():
    conn = connected()
    conn.queue.push(b"pending")
    conn.close((OWNER, 5))
    assert conn.close((OWNER, 6)) == []
    assert conn.closers == [(OWNER, 5), (OWNER, 6)]


def test_peer_fin_posts_close_once_and_writes_go_on():
    conn = connected()
    assert conn.peer_closed() == [(CLOSE, 1)]
    assert conn.state is State.HALFCLOSE_READ and conn.writable
    conn.queue.push(b"reply")
    assert conn.close((OWNER, 5)) == [Effect.FLUSH]
    conn.queue.consume(len(conn.queue.peek()))
    assert events(conn.drained()) == []  # CLOSE went out at the FIN


def test_error_before_close_posts_error_then_close():
    conn = connected()
    assert events(conn.failed("reset")) == [(ERROR, 1, "reset"), (CLOSE, 1)]
    assert conn.state is State.CLOSED


def test_error_after_peer_fin_posts_error_alone():
    conn = connected()
    conn.peer_closed()
    assert events(conn.failed("broken pipe")) == [(ERROR, 1, "broken pipe")]


def test_error_on_a_closed_socket_is_ignored():
    conn = connected()
    conn.shutdown()
    assert conn.failed("late") == []


def test_a_socket_that_never_opened_ends_with_error_alone():
    conn = Conn(1, "tcp", State.CONNECTING, OWNER)
    assert events(conn.failed("refused")) == [(ERROR, 1, "refused")]


def test_shutdown_drops_the_queue_and_keeps_the_id_until_closed():
    conn = connected()
    conn.queue.push(b"x" * 100)
    effects = conn.shutdown()
    assert len(conn.queue) == 0
    assert Effect.RELEASE not in effects and (CLOSE, 1) in effects
    assert conn.close((OWNER, 5)) == [Effect.NOTIFY, Effect.RELEASE]


def test_shutdown_during_a_close_completes_that_close():
    conn = connected()
    conn.queue.push(b"x" * 100)
    conn.close((OWNER, 5))
    assert conn.shutdown() == [Effect.CLOSE_FD, (CLOSE, 1), Effect.NOTIFY, Effect.RELEASE]


def test_start_takes_an_accepted_socket_and_reads_it():
    conn = Conn(1, "tcp", State.ACCEPTED, OWNER)
    conn.address = ("10.0.0.2", 5000)
    assert conn.start(0x0B) == [(CONNECT, 1, ("10.0.0.2", 5000)), Effect.READ]
    assert (conn.state, conn.owner) == (State.CONNECTED, 0x0B)


def test_start_of_a_socket_that_died_in_transit_fails():
    conn = connected()
    conn.abandon()
    conn.failed("reset")
    with pytest.raises(SocketError, match="socket 1 closed"):
        conn.start(0x0B)


def test_start_after_peer_fin_tells_the_new_owner_it_closed():
    conn = connected()
    conn.peer_closed()
    conn.abandon()
    assert events(conn.start(0x0B)) == [(CONNECT, 1, ("127.0.0.1", 9)), (CLOSE, 1)]


def test_abandon_stops_reading_and_silences_events():
    conn = connected()
    assert conn.abandon() == [Effect.STOP_READ]
    assert (conn.state, conn.owner) == (State.ACCEPTED, 0)
    assert conn.received(5) is False


def test_pause_stops_reading_and_resume_reads_again():
    conn = connected()
    assert conn.pause() == [Effect.STOP_READ]
    assert conn.pause() == []  # once
    assert conn.resume() == [Effect.READ]
    assert conn.resume() == []


def test_a_socket_paused_before_it_connects_is_not_read_when_it_does():
    conn = Conn(1, "tcp", State.CONNECTING, OWNER)
    conn.pause()
    assert Effect.READ not in conn.opened_as(("10.0.0.1", 80))
    assert conn.resume() == [Effect.READ]


def test_closing_a_paused_socket_with_a_queue_reads_again_to_discard_input():
    conn = connected()
    conn.pause()
    conn.queue.push(b"unsent")
    assert conn.close(None) == [Effect.FLUSH, Effect.READ]
    assert conn.state is State.HALFCLOSE and not conn.paused


def test_pausing_a_listener_or_a_udp_socket_does_nothing():
    for kind in ("listen", "udp"):
        assert Conn(1, kind, State.OPENING, OWNER).pause() == []
