"""The README's Python examples run as they are, and the docstring examples of the API too."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import planner.api

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_quick_start() -> None:
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make demo" in quick
    assert "make test" in quick


def test_readme_library_example_runs(capsys: object) -> None:
    blocks = python_blocks()
    assert blocks, "the README has no Python example"
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, str(README), "exec"), namespace)
        result = namespace["result"]
        assert getattr(result, "violations") == []  # noqa: B009


def test_api_docstring_examples() -> None:
    failures, tried = doctest.testmod(planner.api, verbose=False)
    assert tried > 0
    assert failures == 0
