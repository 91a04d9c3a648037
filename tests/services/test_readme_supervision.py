"""The README's supervision example runs as a user would run it, and passes its checks."""

import re
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def test_the_supervision_example_runs(capfd):
    chapter = README.read_text().split("## Services that come back: supervision", 1)[1].split("\n## ", 1)[0]
    [program] = [code for code in re.findall(r"```python\n(.*?)```", chapter, re.S) if "trio.run(main)" in code]
    exec(compile(program, "README: supervision", "exec"), {"__name__": "__main__"})
    assert "counter stops at 1" in capfd.readouterr().err
