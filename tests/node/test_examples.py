"""The typed example program runs as a user would run it, and passes its own checks."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "typed" / "embed.py"


async def test_the_typed_embedding_example_runs_its_checks_and_exits_0(tmp_path):
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines()[-1] == "typed example: ok"
