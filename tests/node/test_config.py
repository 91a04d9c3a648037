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


def test_unknown_key_is_named_with_the_file(tmp_path):
    path = write(tmp_path, 'strat = "main"\n')
    with pytest.raises(skypy.ConfigError, match=rf"^{path}: unknown key 'strat'"):
        config.load(path)


def test_wrong_type_names_the_key_and_what_it_must_be(tmp_path):
    path = write(tmp_path, 'harbor = "one"\n')
    with pytest.raises(skypy.ConfigError, match=rf"^{path}: key 'harbor' must be an integer 0..255, not 'one'"):
        config.load(path)


def test_missing_start_service_is_named(tmp_path):
    path = write(tmp_path, 'start = "nowhere"\n')
    with pytest.raises(skypy.ConfigError, match=rf"^{path}: key 'start': no service 'nowhere'"):
        config.load(path)


def test_bad_toml_names_the_file_and_position(tmp_path):
    path = write(tmp_path, "start = \n")
    with pytest.raises(skypy.ConfigError, match=rf"^{path}: bad TOML: .*line 1"):
        config.load(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(skypy.ConfigError, match="no such config file"):
        config.load(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    "line, reason",
    [
        ("port = 70000", "key 'console.port' must be a port number"),
        ("greeting_delay = -1", "key 'console.greeting_delay' must be a number of seconds"),
        ("colour = 1", "unknown key 'console.colour'"),
    ],
)
def test_console_table_keys_are_checked(tmp_path, line, reason):
    path = write(tmp_path, f"[console]\n{line}\n")
    with pytest.raises(skypy.ConfigError, match=reason):
        config.load(path)


@pytest.mark.parametrize(
    "line, reason",
    [
        ("threshold = -1", "key 'gc.threshold' must be a whole number of allocations"),
        ("freeze = 1", "key 'gc.freeze' must be true or false"),
        ("generations = 3", "unknown key 'gc.generations'"),
    ],
)
def test_gc_table_keys_are_checked(tmp_path, line, reason):
    path = write(tmp_path, f"[gc]\n{line}\n")
    with pytest.raises(skypy.ConfigError, match=reason):
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


@pytest.mark.parametrize(
    "strategy, service, named",
    [
        ("one_for_one", "nowhere", r"key 'supervise\[0\].children\[0\].service': no service 'nowhere'"),
        ("all_for_none", "simpledb", r"key 'supervise\[0\].strategy' must be one of one_for_one"),
    ],
)
def test_a_bad_supervise_table_names_the_key(tmp_path, strategy, service, named):
    path = write(tmp_path, f'[[supervise]]\nstrategy = "{strategy}"\n[[supervise.children]]\nservice = "{service}"\n')
    with pytest.raises(skypy.ConfigError, match=named):
        config.load(path)


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
