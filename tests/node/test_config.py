"""Configs: a bad one stops start-up naming the file, the key and the reason."""

import re
import tempfile
from pathlib import Path

import pytest

import skypy
from skypy._core import config
from skypy.testing import open_test_node


def write(tmp_path, text):
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_missing_file_is_named(tmp_path):
    with pytest.raises(skypy.ConfigError, match="no such config file"):
        config.load(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    "text, reason",
    [
        ('strat = "main"\n', "unknown key 'strat'"),
        ('harbor = "one"\n', "key 'harbor' must be an integer 0..255, not 'one'"),
        ('start = "nowhere"\n', "key 'start': no service 'nowhere'"),
        ("start = \n", "bad TOML: .*line 1"),
        ("[console]\nport = 70000\n", "key 'console.port' must be a port number"),
        ("[console]\ngreeting_delay = -1\n", "key 'console.greeting_delay' must be a number of seconds"),
        ("[console]\ncolour = 1\n", "unknown key 'console.colour'"),
        ("[gc]\nthreshold = -1\n", "key 'gc.threshold' must be a whole number of allocations"),
        ("[gc]\nfreeze = 1\n", "key 'gc.freeze' must be true or false"),
        ("[gc]\ngenerations = 3\n", "unknown key 'gc.generations'"),
        (
            '[[supervise]]\nstrategy = "one_for_one"\n[[supervise.children]]\nservice = "nowhere"\n',
            r"key 'supervise\[0\].children\[0\].service': no service 'nowhere'",
        ),
        (
            '[[supervise]]\nstrategy = "all_for_none"\n[[supervise.children]]\nservice = "simpledb"\n',
            r"key 'supervise\[0\].strategy' must be one of one_for_one",
        ),
    ],
)
def test_a_bad_config_names_the_file_and_the_key(tmp_path, text, reason):
    path = write(tmp_path, text)
    with pytest.raises(skypy.ConfigError, match=rf"^{re.escape(str(path))}: {reason}"):
        config.load(path)


def test_service_path_is_relative_to_the_config_file_and_keeps_the_shipped_services(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "hello.py").write_text("async def main():\n    pass\n")
    settings = config.load(write(tmp_path, 'start = "hello"\nservice_path = ["mine"]\n'))
    assert settings.service_path[0] == tmp_path / "mine"
    assert settings.service_path[-1] == config.shipped("services")


def test_the_shipped_default_config_is_valid():
    settings = config.load(config.default_config_path())
    assert settings.start is not None


async def test_env_values_are_read_by_getenv(tmp_path):
    path = write(tmp_path, '[env]\nregion = "eu"\nmax_players = 64\n')
    async with open_test_node(path):
        assert skypy.getenv("region") == "eu"
        assert skypy.getenv("max_players") == 64
        assert skypy.getenv("absent") is None


async def test_setenv_is_write_once(node):
    skypy.setenv("mode", "fast")
    assert skypy.getenv("mode") == "fast"
    with pytest.raises(skypy.SkypyError, match="'mode' is already set"):
        skypy.setenv("mode", "slow")


async def test_open_node_overrides_are_checked_like_config_keys():
    with pytest.raises(skypy.ConfigError, match="open_node\\(\\): key 'harbor'"):
        async with skypy.open_node(harbor=300):
            pass


@pytest.mark.parametrize(
    "key, replacement",
    [("thread = 8", "list several nodes in `nodes`"), ('bootstrap = "snlua bootstrap"', "name your first service in `start`")],
)
def test_a_skynet_key_names_what_replaces_it(tmp_path, key, replacement):
    path = write(tmp_path, key + "\n")
    with pytest.raises(skypy.ConfigError, match=rf"key '{key.split()[0]}' is skynet's, not skypy's: .*{re.escape(replacement)}"):
        config.load(path)


def test_overrides_merge_tables_key_by_key(tmp_path):
    path = write(tmp_path, '[env]\nkv_host = "127.0.0.1"\nkv_port = 7201\n[console]\nport = 8000\n')
    settings = config.build("overrides", {"env": {"kv_port": 0}, "console": {"host": "::1"}}, base=config.load(path))
    assert settings.env == {"kv_host": "127.0.0.1", "kv_port": 0}
    assert settings.console == {"port": 8000, "host": "::1"}


def test_console_false_turns_the_console_off(tmp_path):
    assert config.build("x", {"console": False}, base=config.load(write(tmp_path, "[console]\nport = 0\n"))).console is None


def test_message_logs_go_beside_the_log_file(tmp_path):
    (tmp_path / "logs").mkdir()
    settings = config.load(write(tmp_path, 'logger = "logs/node.log"\n'))
    assert settings.logpath == tmp_path / "logs"


def test_message_logs_go_to_a_temporary_folder_without_a_log_file():
    assert config.Config().logpath == Path(tempfile.gettempdir())


async def test_getenv_also_reads_the_configs_own_keys(tmp_path):
    path = write(tmp_path, 'harbor = 3\n[env]\nregion = "eu"\n')
    async with open_test_node(path):
        assert (skypy.getenv("harbor"), skypy.getenv("region"), skypy.getenv("start")) == (3, "eu", None)


async def test_supervise_trees_start_before_the_start_service(tmp_path):
    (tmp_path / "first.py").write_text(
        "import skypy\nasync def main():\n    skypy.setenv('db_seen', skypy.localname('.db') is not None)\n"
    )
    path = write(
        tmp_path,
        'start = "first"\nservice_path = ["."]\n'
        '[[supervise]]\nstrategy = "one_for_all"\nintensity = 5\nperiod = 2.5\nname = ".sup"\n'
        '[[supervise.children]]\nservice = "simpledb"\nname = ".db"\nrestart = "transient"\nshutdown = "infinity"\n',
    )
    async with open_test_node(path) as node:
        from skypy import supervisor

        assert node.node.env["db_seen"] is True
        [db] = await supervisor.children(".sup")
        assert db == (".db", node.localname(".db"), "transient")
