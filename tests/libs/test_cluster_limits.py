"""The cluster port's bounds, on real sockets: the largest multipart request, the
parts a connection may leave unfinished, and who may connect ([cluster] allow)."""

import ipaddress

import pytest
import trio

import skypy
from skypy import cluster, netpack
from skypy._core.config import build
from skypy.cluster import wire

LIMIT = 100_000


async def closed_by_the_node(stream: trio.SocketStream) -> bool:
    """Whether the node closes `stream` (reading what it sends first)."""
    with trio.fail_after(5):
        while chunk := await stream.receive_some():
            pass
    return chunk == b""


def header(session: int, size: int) -> bytes:
    """A multipart call header to @store announcing `size` bytes."""
    return wire.encode_request("@store", session, bytes(wire.PART_SIZE))[0][:-4] + size.to_bytes(4, "little")


def part(session: int, size: int) -> bytes:
    """A part of session's request, not the last."""
    return netpack.pack(b"\x02" + session.to_bytes(4, "little") + bytes(size))


@pytest.mark.skypy_config(cluster={"max_request": LIMIT})
async def test_a_request_announcing_more_than_max_request_closes_the_connection_with_one_line(node):
    _, port = await cluster.open(0)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(header(1, LIMIT + 1))
    assert await closed_by_the_node(stream)
    line = await node.wait_for_log("bad packet")
    assert f"announces {LIMIT + 1} bytes, over the limit of {LIMIT} ([cluster] max_request)" in line


@pytest.mark.skypy_config(cluster={"max_request": LIMIT})
async def test_unfinished_requests_holding_more_than_max_request_close_the_connection(node):
    _, port = await cluster.open(0)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    # Two requests under the limit each, never finished: 120,000 bytes held.
    for session in (1, 2):
        await stream.send_all(header(session, 90_000) + part(session, 60_000))
    assert await closed_by_the_node(stream)
    assert "over the limit of 100000" in await node.wait_for_log("unfinished multipart requests hold")


@pytest.mark.skypy_config(cluster={"max_request": LIMIT})
async def test_a_request_within_max_request_is_served(node):
    cluster.register("store", await node.newservice(echo_service))
    _, port = await cluster.open(0)
    cluster.reload({"self": f"127.0.0.1:{port}"})
    big = "x" * (LIMIT - 100)
    assert await cluster.call("self", "@store", big) == big


async def echo_service():
    skypy.dispatch("lua", lambda session, source, *args: skypy.ret(*args))


def test_the_limit_defaults_to_64_mib():
    assert cluster.ClusterOptions().max_request == 64 << 20


@pytest.mark.skypy_config(cluster={"allow": ["10.0.0.0/8", "::1"]})
async def test_a_peer_outside_allow_is_closed_with_one_line(node):
    _, port = await cluster.open(0)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    assert await closed_by_the_node(stream)
    assert await node.wait_for_log("cluster: 127.0.0.1:")
    assert (await node.wait_for_log("is not in [cluster] allow")).endswith("connection closed")


@pytest.mark.skypy_config(cluster={"allow": ["127.0.0.0/8"]})
async def test_a_peer_inside_allow_is_served(node):
    cluster.register("store", await node.newservice(echo_service))
    _, port = await cluster.open(0)
    cluster.reload({"self": f"127.0.0.1:{port}"})
    assert await cluster.call("self", "@store", "hi") == "hi"


async def test_listening_on_every_interface_is_logged(node):
    _, port = await cluster.open(0)
    assert "any host that reaches it may call" in await node.wait_for_log(f"0.0.0.0:{port} is every interface")


def test_an_allow_entry_that_is_no_address_is_a_config_error():
    with pytest.raises(skypy.ConfigError, match=r"key 'cluster.allow' must be a list of addresses or networks"):
        build("my.toml", {"cluster": {"allow": ["10.0.0.0/8", "intranet"]}})


def test_allow_matches_addresses_networks_and_ipv4_mapped_ipv6():
    options = cluster.ClusterOptions(allow=(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1")))
    hosts = ("10.1.2.3", "::ffff:10.1.2.3", "::1", "11.0.0.1", "name")
    assert [options.allows(host) for host in hosts] == [True, True, True, False, False]
