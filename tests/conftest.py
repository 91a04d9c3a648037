import pytest

import skypy


@pytest.fixture
async def node():
    """A node with default settings; the test body acts as one of its services."""
    async with skypy.open_node() as running:
        yield running


@pytest.fixture
def logs(node):
    """Every line the node logs, as (source, text), in order."""
    lines = []
    node.add_log_hook(lambda source, text: lines.append((source, text)))
    return lines
