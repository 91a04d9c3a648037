"""NodeProcess: the `skypy` command run as a child process, its log read line by line."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import trio

DEFAULT_TIMEOUT = 20.0
SKYPY = str(Path(sys.executable).parent / "skypy")


class NodeProcess:
    """A `skypy` child process (``skypy run CONFIG``, say) whose log (stderr) is read as it comes."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stderr is not None, "the log is read from a pipe: start it with stderr=PIPE"
        self.process = process
        self.stderr = process.stderr
        self.lines: list[str] = []
        self._pending = b""

    @classmethod
    async def start(cls, *args: str, cwd: Path | str | None = None) -> NodeProcess:
        """Run ``skypy *args`` (the command installed beside this Python)."""
        process = await trio.lowlevel.open_process([SKYPY, *args], cwd=cwd, stderr=subprocess.PIPE)
        return cls(process)

    async def wait_for(self, text: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The first log line containing `text`, reading more output as needed."""
        with trio.fail_after(timeout):
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                chunk = await self.stderr.receive_some()
                if not chunk:
                    raise AssertionError(f"{text!r} never logged; got {self.lines}")
                self._pending += chunk
                *complete, self._pending = self._pending.split(b"\n")
                self.lines += [line.decode() for line in complete]

    async def stop(self, signum: int = signal.SIGINT, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Send `signum` and return the exit status."""
        self.process.send_signal(signum)
        with trio.fail_after(timeout):
            return await self.process.wait()
