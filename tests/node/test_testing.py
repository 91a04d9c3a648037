"""skypy.testing: the pytest plugin, FakeClient, log waits and the fd leak check."""

import os
import re
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
    with pytest.raises(AssertionError, match="no line containing the text 'never' .* was logged within 1 s"):
        await skypy_node.wait_for_log("never", timeout=1)


async def test_wait_for_log_takes_a_str_as_plain_text_and_says_so_when_it_misses(skypy_node, autojump_clock):
    skypy.error("client 7 gone")
    with pytest.raises(AssertionError, match=r"the text 'client \.\* gone' \(a str is plain text, not a regular expression"):
        await skypy_node.wait_for_log("client .* gone", timeout=1)


async def test_wait_for_log_searches_each_line_for_a_compiled_regex(skypy_node):
    skypy.error("client 7 gone")
    assert await skypy_node.wait_for_log(re.compile(r"client \d+ gone")) == "client 7 gone"


async def test_wait_for_log_names_the_regex_it_missed(skypy_node, autojump_clock):
    with pytest.raises(AssertionError, match=r"no line matching the regular expression 'x\+y' was logged"):
        await skypy_node.wait_for_log(re.compile(r"x+y"), timeout=1)


def test_the_plugin_says_to_set_trio_mode_when_it_is_missing(pytester):
    pytester.makepyfile("async def test_uses_the_node(skypy_node):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*skypy_node is an async fixture that pytest-trio runs: set trio_mode = true*"])


def test_a_skypy_config_marker_merges_its_tables_over_the_config_file(pytester):
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makefile(".toml", my='[env]\nkv_host = "127.0.0.1"\nkv_port = 7201\n')
    pytester.makepyfile(
        """
        import pytest
        import skypy

        @pytest.mark.skypy_config("my.toml", env={"kv_port": 0})
        async def test_env(skypy_node):
            assert (skypy.getenv("kv_host"), skypy.getenv("kv_port")) == ("127.0.0.1", 0)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_skypy_config_marker_turns_the_console_off_with_false(pytester):
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makefile(".toml", my="[console]\nport = 0\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.skypy_config("my.toml", console=False)
        async def test_no_console(skypy_node):
            assert "debug_console" not in {svc.label for svc in skypy_node.node.services.values()}
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


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
