"""skypy.testing: pytest fixtures and fake clients for testing skypy services.

Installed as a pytest plugin: the `skypy_node` and `skypy_config` fixtures
are there in any project with skypy installed (tests run under pytest-trio).
"""

from .client import FakeClient
from .fds import no_fd_leaks, open_fds
from .node import Crash, NodeUnderTest, open_test_node
from .process import NodeProcess
from .wait import wait_until

__all__ = [
    "Crash", "FakeClient", "NodeProcess", "NodeUnderTest", "no_fd_leaks", "open_fds", "open_test_node", "wait_until",
]
