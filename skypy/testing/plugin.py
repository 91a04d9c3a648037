"""The pytest plugin (registered as ``skypy``): the skypy_config and skypy_node fixtures."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from .node import NodeUnderTest, open_test_node


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "skypy_config(config=None, **overrides): the node that skypy_node runs for this test "
        "(skypy.open_node's arguments: a TOML path or Config, and config keys)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test using skypy_node that pytest-trio will not run fails with what to set, not
    with pytest's generic complaint about an async fixture."""
    if "skypy_node" in getattr(item, "fixturenames", ()) and not _run_by_trio(item):
        pytest.fail(
            "skypy_node is an async fixture that pytest-trio runs: set trio_mode = true in your "
            "pytest configuration ([tool.pytest.ini_options] in pyproject.toml, or pytest.ini), "
            "or mark the test @pytest.mark.trio",
            pytrace=False,
        )


def _run_by_trio(item: pytest.Item) -> bool:
    try:
        trio_mode = item.config.getini("trio_mode")
    except ValueError:  # pytest-trio is not installed: nothing runs async tests
        return False
    return bool(trio_mode) or item.get_closest_marker("trio") is not None


@pytest.fixture
def skypy_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """skypy.open_node's arguments for skypy_node: from the test's `skypy_config`
    marker, else the defaults. Override this fixture to set them for a module."""
    marker = request.node.get_closest_marker("skypy_config")
    if marker is None:
        return {}
    return {"config": marker.args[0] if marker.args else None, **marker.kwargs}


@pytest.fixture
async def skypy_node(skypy_config: dict[str, Any]) -> AsyncIterator[NodeUnderTest]:
    """A node running `skypy_config`, closed after the test; a service crash fails the test."""
    async with open_test_node(**skypy_config) as node:
        yield node
