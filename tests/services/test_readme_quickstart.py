"""README's quick start, as a newcomer follows it: develop on the shipped services, run examples with the venv."""

import re
from pathlib import Path

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_the_quick_start_says_how_to_develop_on_the_shipped_services():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "pip install -e ." in quick_start


def test_examples_are_run_with_the_venvs_python_which_has_skypy():
    assert re.findall(r"(?<![\w/.])python3? examples/", README) == []
    assert ".venv/bin/python examples/chat_client.py" in README
