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
