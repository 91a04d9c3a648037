"""A cluster peer for the tests: a `skypy run` node in another process."""

from __future__ import annotations

from pathlib import Path

from skypy.testing import NodeProcess

NODES = Path(__file__).parent / "cluster_nodes"
STORE = 0x0A  # where cluster_nodes/remote.py puts the store: where skynet's capture had it


class Remote:
    """A `skypy run` node named db, serving cluster_nodes/store.py as @store and .store."""

    def __init__(self, process: NodeProcess, port: int) -> None:
        self.process = process
        self.port = port

    @classmethod
    async def start(cls, tmp_path: Path, port: int = 0) -> Remote:
        config = tmp_path / "db.toml"
        config.write_text(
            f'start = "remote"\nservice_path = ["{NODES}"]\nnode = "db"\n'
            f'[cluster]\ndb = "127.0.0.1:{port}"\n'
        )
        process = await NodeProcess.start("run", str(config), cwd=tmp_path)
        listening = await process.wait_for("cluster: listening on")
        await process.wait_for("remote ready")
        return cls(process, int(listening.rsplit(":", 1)[1]))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.process.process.returncode is None:
            assert await self.process.stop() == 0
