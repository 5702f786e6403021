"""Every Python block of the README runs on its own, as a newcomer would paste it."""
import contextlib
import io
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_a_readme_block_runs_alone_and_quietly(index):
    block = BLOCKS[index]
    if "torch" in block or "skorch" in block:
        pytest.importorskip("skorch")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, f"README.md block {index}", "exec"), {"__name__": "__readme__"})
    assert out.getvalue().count("\n") <= 5, out.getvalue()  # no epoch tables or progress logs
