"""The README's "Shared state and hot update" examples run, as a user would run them, and pass their checks."""

import re
import tempfile
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"


def examples():
    text = README.read_text()
    chapter = text.split("## Shared state and hot update", 1)[1].split("\n## ", 1)[0]
    found = {}
    for section in chapter.split("\n### ")[1:]:
        title = section.split("\n", 1)[0]
        programs = [code for code in re.findall(r"```python\n(.*?)```", section, re.S) if "trio.run(main)" in code]
        assert len(programs) == 1, f"README section {title!r} should have one runnable example"
        found[title] = programs[0]
    return found


@pytest.mark.parametrize("title", list(examples()))
def test_the_example_runs(title, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # what it writes lands under tmp_path
    exec(compile(examples()[title], f"README: {title}", "exec"), {"__name__": "__main__"})
