"""skypy.testing: the pytest plugin, FakeClient, log waits and the fd leak check."""

import os
from pathlib import Path

import pytest
import trio
import trio.testing

import skypy
from skypy.testing import FakeClient, no_fd_leaks, open_test_node

pytest_plugins = ["pytester"]

README = Path(__file__).parents[2] / "README.md"


def test_the_plugin_fails_a_test_whose_service_crashed_and_passes_one_that_took_the_crash(pytester):
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        """
        import pytest
        import skypy

        async def crash(skypy_node):
            async def crashy():
                skypy.dispatch("lua", lambda session, source: 1 / 0)
            with pytest.raises(skypy.CallError):
                await skypy_node.call(await skypy_node.newservice(crashy), "lua")

        async def test_unexpected(skypy_node):
            await crash(skypy_node)

        async def test_expected(skypy_node):
            await crash(skypy_node)
            assert isinstance(skypy_node.crashes.pop().exception, ZeroDivisionError)

        @pytest.mark.skypy_config(env={"colour": "blue"})
        async def test_marker_config(skypy_node):
            assert skypy.getenv("colour") == "blue"
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2, failed=1)  # pytest-trio reports the teardown failure as the test's
    result.stdout.fnmatch_lines(
        ["*test_unexpected*", "*1 service crash(es) during the test:", "*crashy) handler raised ZeroDivisionError*"]
    )


async def test_a_test_node_raises_on_leaving_if_a_service_crashed():
    with pytest.raises(AssertionError, match=r"crashy\) start raised KeyError"):
        async with open_test_node() as node:
            async def crashy():
                raise KeyError("boom")

            with pytest.raises(skypy.CallError):
                await node.newservice(crashy)


async def test_wait_for_log_wakes_when_the_line_is_logged(skypy_node):
    async with trio.open_nursery() as nursery:
        nursery.start_soon(skypy_node.wait_for_log, "later")
        await trio.testing.wait_all_tasks_blocked()
        skypy.error("it comes later")


async def test_wait_for_log_names_the_text_it_missed(skypy_node, autojump_clock):
    with pytest.raises(AssertionError, match="'never' was not logged within 1 s"):
        await skypy_node.wait_for_log("never", timeout=1)


async def test_fake_client_recv_packet_times_out_when_nothing_comes(autojump_clock):
    with trio.socket.socket() as listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        async with await FakeClient.connect(listener.getsockname()[1]) as client:
            with pytest.raises(trio.TooSlowError):
                await client.recv_packet(timeout=1)


def test_no_fd_leaks_names_what_was_left_open():
    with pytest.raises(AssertionError, match=r"1 fds leaked: \d+ -> pipe:"):
        with no_fd_leaks():
            reader, writer = os.pipe()
            os.close(writer)
    os.close(reader)


def test_the_readme_shows_the_example_test_as_it_is():
    example = (Path(__file__).parents[1] / "services" / "test_readme_example.py").read_text()
    assert example in README.read_text()
