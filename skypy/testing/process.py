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
        """The first log line containing `text` (plain text, not a regular expression),
        reading more output as needed."""
        with trio.fail_after(timeout):
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                if not await self._read():
                    raise AssertionError(f"{text!r} never logged; got {self.lines}")

    async def output(self, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
        """Every line the process wrote to stderr, once it has closed it (exited)."""
        with trio.fail_after(timeout):
            while await self._read():
                pass
        return self.lines

    async def _read(self) -> bool:
        chunk = await self.stderr.receive_some()
        if not chunk:
            return False
        self._pending += chunk
        *complete, self._pending = self._pending.split(b"\n")
        self.lines += [line.decode() for line in complete]
        return True

    async def stop(self, signum: int = signal.SIGINT, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Send `signum` and return the exit status."""
        self.process.send_signal(signum)
        return await self.wait(timeout)

    async def wait(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """The exit status, once the process has exited; trio.TooSlowError after `timeout`."""
        with trio.fail_after(timeout):
            return await self.process.wait()
