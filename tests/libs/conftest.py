import pytest

from skypy import cluster
from tests.helpers.cluster import Remote


@pytest.fixture
async def db(node, tmp_path):
    """Node db in another process, in this node's cluster table."""
    remote = await Remote.start(tmp_path)
    cluster.reload({"db": remote.address})
    yield remote
    await remote.stop()
