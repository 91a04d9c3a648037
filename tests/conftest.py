"""The node a test runs on, shared by every folder.

A test that runs a node asks for `node`: skypy.testing's crash-checking node
(the plugin's `skypy_node`), so a service that raises and is not caught fails
the test, unless the test takes the crash out of ``node.crashes`` and checks
it. Which node runs is chosen as for `skypy_node`: a `skypy_config` marker
with open_node's arguments. `default_config` is for tests that run the
`skypy` command on the shipped default config.
"""

import re
from pathlib import Path
from typing import Any

import pytest

from skypy._core.config import default_config_path
from skypy.testing import NodeUnderTest


@pytest.fixture
def skypy_config(skypy_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The marker's open_node arguments, with the test's tmp_path first on the
    service path (a test may write a service there and launch it) and as the
    folder for message logs, so nothing a test's node writes lands elsewhere.
    A config file named by the marker keeps its own folders."""
    if skypy_config.get("config") is not None:
        return skypy_config
    return {"service_path": [tmp_path], "logpath": tmp_path, **skypy_config}


@pytest.fixture
def node(skypy_node: NodeUnderTest) -> NodeUnderTest:
    """A node for the test, closed after it; the test body acts as one of its services."""
    return skypy_node


@pytest.fixture
def logs(node: NodeUnderTest) -> list[tuple[int, str]]:
    """Every line the node has logged since it started, as (source, text), in order."""
    return node.log_lines


@pytest.fixture
def default_config(tmp_path: Path) -> Path:
    """A copy of the config `skypy run` runs with no argument, its chat lobby, web
    chat, console and web page on free ports (port 0), so that two test runs at once do not collide."""
    text = default_config_path().read_text()
    for key, count in (("chat_port", 1), ("web_port", 1), ("port", 2)):
        text, found = re.subn(rf"^{key} = \d+$", f"{key} = 0", text, flags=re.MULTILINE)
        assert found == count, f"the default config no longer has {count} {key!r}: update this fixture"
    path = tmp_path / "default.toml"
    path.write_text(text)
    return path
