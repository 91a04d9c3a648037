"""skypy.socket's API on real sockets: opening, reading, writing, ownership, UDP and info."""

import pytest
import trio

import skypy
from skypy import socket
from tests.helpers.peers import receive_all, socket_info


async def test_listen_on_port_zero_returns_the_real_port(node):
    id, host, port = await socket.listen("127.0.0.1", 0)
    assert (host, port > 0) == ("127.0.0.1", True)
    assert socket_info(id)["state"] == "listen"


async def test_listen_on_a_taken_port_fails_naming_it(listener):
    with pytest.raises(socket.SocketError, match=f"127.0.0.1:{listener.port}"):
        await socket.listen("127.0.0.1", listener.port)


async def test_open_connects_and_both_ends_talk(listener):
    id = await socket.open("127.0.0.1", listener.port)
    accepted = await listener.accepted()
    await socket.start(accepted)
    assert socket.write(id, b"ping")
    assert await socket.read(accepted, 4) == b"ping"
    assert socket.write(accepted, b"pong")
    assert await socket.read(id, 4) == b"pong"


async def test_open_failure_names_host_and_port(node):
    unused, _, port = await socket.listen("127.0.0.1", 0)
    await socket.close(unused)
    with pytest.raises(socket.SocketError, match=f"127.0.0.1:{port}"):
        await socket.open("127.0.0.1", port)


async def test_read_n_waits_for_exactly_n_bytes(listener):
    client, id = await listener.connect()
    await client.send_all(b"abc")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, b"defgh")
        assert await socket.read(id, 5) == b"abcde"
    assert await socket.read(id) == b"fgh"


async def test_read_of_no_bytes_returns_at_once_and_a_negative_count_is_refused(listener):
    client, id = await listener.connect()
    assert await socket.read(id, 0) == b""
    with pytest.raises(ValueError, match="cannot read -1 bytes"):
        await socket.read(id, -1)
    await client.send_all(b"ab")
    assert await socket.read(id, 2) == b"ab"  # nothing was taken meanwhile


async def test_readline_strips_the_separator(listener):
    client, id = await listener.connect()
    await client.send_all(b"one\r\ntwo\r\n")
    assert await socket.readline(id, b"\r\n") == b"one"
    assert await socket.readline(id, b"\r\n") == b"two"


async def test_readall_returns_everything_until_the_peer_closes(listener):
    client, id = await listener.connect()
    await client.send_all(b"all of ")
    await client.send_all(b"it")
    await client.aclose()
    assert await socket.readall(id) == b"all of it"
    assert socket.disconnected(id)


async def test_read_when_the_peer_closes_first_raises_with_the_rest(listener):
    client, id = await listener.connect()
    await client.send_all(b"half")
    await client.aclose()
    with pytest.raises(socket.SocketClosed) as closed:
        await socket.read(id, 10)
    assert closed.value.rest == b"half"
    with pytest.raises(socket.SocketClosed):
        await socket.readline(id)


async def test_read_of_a_closed_id_raises_at_once(listener):
    client, id = await listener.connect()
    await socket.close(id)
    with pytest.raises(socket.SocketClosed, match=str(id)):
        await socket.read(id)


async def test_a_second_reader_of_one_socket_is_refused(listener):
    client, id = await listener.connect()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(socket.read, id)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(socket.SocketError, match="already being read"):
            await socket.read(id)
        await client.send_all(b"x")


async def test_high_priority_writes_overtake_queued_low_ones(listener):
    client, id = await listener.connect()
    low = b"L" * (8 << 20)  # more than the kernel takes at once, so the rest queues
    socket.lwrite(id, low)
    socket.lwrite(id, b"<low tail>")
    socket.write(id, b"<high>")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(socket.close, id)
        received = await receive_all(client)
    assert received.index(b"<high>") < received.index(b"<low tail>")
    assert received.replace(b"<high>", b"") == low + b"<low tail>"


async def test_any_service_may_write_to_any_id(listener):
    client, id = await listener.connect()

    async def writer(id):
        assert socket.write(id, b"from elsewhere")

    await skypy.newservice(writer, id)
    assert await client.receive_some(100) == b"from elsewhere"


async def test_write_to_an_unknown_id_returns_false(node):
    assert socket.write(123456, b"x") is False


async def test_on_accept_may_be_a_coroutine_that_starts_the_socket(node):
    got = []
    done = trio.Event()

    async def service():
        async def on_accept(id, address):
            await socket.start(id)
            got.append((await socket.read(id, 5), address[0]))
            done.set()

        listen_id, _, port = await socket.listen("127.0.0.1", 0)
        await socket.start(listen_id, on_accept)
        skypy.dispatch("lua", lambda session, source: skypy.ret(port))

    port = await skypy.call(await skypy.newservice(service), "lua")
    client = await trio.open_tcp_stream("127.0.0.1", port)
    await client.send_all(b"hello")
    with trio.fail_after(5):
        await done.wait()
    assert got == [(b"hello", "127.0.0.1")]


async def test_abandon_lets_another_service_start_the_socket_without_losing_data(listener):
    client, id = await listener.connect()
    socket.abandon(id)
    assert socket.invalid(id)
    await client.send_all(b"for the new owner")

    async def new_owner(id):
        await socket.start(id)
        skypy.dispatch("lua", lambda session, source: skypy.ret())

        async def read(session, source):
            skypy.ret(await socket.read(id, 17))

        skypy.dispatch("lua", read)

    owner = await skypy.newservice(new_owner, id)
    assert await skypy.call(owner, "lua") == b"for the new owner"
    assert socket_info(id)["owner"] == owner


async def test_start_of_a_socket_that_died_in_transit_fails(listener):
    client, id = await listener.connect(start=False)
    socket.close_fd(id)
    with pytest.raises(socket.SocketError):
        await socket.start(id)


async def test_close_fd_refuses_a_socket_this_service_started(listener):
    client, id = await listener.connect()
    with pytest.raises(socket.SocketError, match="use close"):
        socket.close_fd(id)


async def test_info_counts_bytes_each_way(listener):
    client, id = await listener.connect()
    await client.send_all(b"12345")
    await socket.read(id, 5)
    socket.write(id, b"abc")
    entry = socket_info(id)
    assert (entry["kind"], entry["state"], entry["read"], entry["written"], entry["queued"]) == (
        "tcp", "connected", 5, 3, 0,
    )
    assert entry["owner"] == skypy.self()


async def test_udp_datagrams_reach_the_callback_and_sendto_answers(node):
    send, receive = trio.open_memory_channel(10)
    server = await socket.udp(lambda data, address: send.send_nowait((data, address)), "127.0.0.1", 0)
    port = socket_info(server)["address"][1]
    client = await socket.udp(lambda data, address: send.send_nowait(("to client", data)), "127.0.0.1", 0)
    socket.udp_connect(client, "127.0.0.1", port)
    assert socket.write(client, b"datagram")
    data, sender = await receive.receive()
    assert data == b"datagram"
    assert socket.sendto(server, sender, b"reply")
    assert await receive.receive() == ("to client", b"reply")
