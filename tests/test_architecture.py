"""The wings import one way: import-linter's contracts (setup.cfg) hold, and catch a breach.

The contracts are checked on the package as it is, and on a copy of it with one
upward import planted (an adapter importing the estimators), which must break them.
"""
import pathlib
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("importlinter")

ROOT = pathlib.Path(__file__).resolve().parents[1]
_RUN = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='setup.cfg', no_cache=True, no_logo=True))")


def _lint(where):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(where)}
    return subprocess.run([sys.executable, "-c", _RUN], cwd=where, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy(tmp_path):
    shutil.copytree(ROOT / "skinfluence", tmp_path / "skinfluence",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    return tmp_path


def test_the_contracts_hold_on_the_package():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


@pytest.mark.parametrize("planted_in, line, broken", [
    ("models/base.py", "from skinfluence.estimators import InfluenceTrimmer", "Wings import"),
    ("methods/_ip.py", "from skinfluence.objectives import Utility", "Wings import"),
    ("utils/_validation.py", "import skinfluence.cleaning", "Wings import"),
    ("models/torch.py", "from skinfluence.models.linear import LinearModelAdapter",
     "Model families"),
])
def test_a_planted_import_breaks_a_contract(tmp_path, planted_in, line, broken):
    copy = _copy(tmp_path)
    target = copy / "skinfluence" / planted_in
    target.write_text(target.read_text() + f"\n\ndef _planted():\n    {line}\n")
    out = _lint(copy)
    assert out.returncode != 0
    verdicts = [ln for ln in out.stdout.splitlines() if ln.endswith(("KEPT", "BROKEN"))]
    assert any(ln.startswith(broken) and ln.endswith("BROKEN") for ln in verdicts), out.stdout
