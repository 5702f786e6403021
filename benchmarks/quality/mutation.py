"""Mutation testing of the scoring core with mutmut (``make mutation``; not CI).

Each group mutates one part of the package and runs only the test files that
exercise it (the whole suite per mutant is far too slow). mutmut 3 works in a
``mutants/`` copy; this script goes one step further and runs it inside a
snapshot of the package and tests under ``mutants/_work/<group>/``, so the
working tree is never touched, whatever else is being edited meanwhile.

Usage::

    python benchmarks/quality/mutation.py [group ...]     # default: every group

Prints, per group, mutmut's counts and the surviving mutants; the results are
written up by hand in ``benchmarks/quality/RESULTS_mutation.md``.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "mutants" / "_work"

#: group -> (files to mutate, test files that exercise them)
GROUPS = {
    "methods": (["skinfluence/methods.py"],
                ["tests/methods/test_methods.py", "tests/test_references.py",
                 "tests/test_bad_input.py"]),
    "objectives": (["skinfluence/objectives.py"],
                   ["tests/objectives/test_objectives.py", "tests/test_references.py",
                    "tests/test_bad_input.py"]),
    "crossfit": (["skinfluence/cleaning/_crossfit.py"],
                 ["tests/test_bad_input.py", "tests/estimators/test_estimators.py"]),
    "estimators": (["skinfluence/estimators.py"],
                   ["tests/estimators/test_estimators.py", "tests/test_references.py"]),
    "models": (["skinfluence/models/linear.py", "skinfluence/methods/_newton_loo.py"],
               ["tests/models/test_linear.py", "tests/methods/test_newton_loo.py",
                "tests/test_references.py"]),
}

SETUP_CFG = """[tool:pytest]
testpaths = tests
addopts = -q -p no:cacheprovider -x
markers =
    cuda: needs a CUDA device
    slow: slower tests

[mutmut]
source_paths = skinfluence
only_mutate =
{only}
pytest_add_cli_args_test_selection =
{tests}
"""


def run_group(name, max_children=2):
    files, tests = GROUPS[name]
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shutil.copytree(ROOT / "skinfluence", work / "skinfluence",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "setup.cfg").write_text(SETUP_CFG.format(
        only="\n".join(f"    {f}" for f in files), tests="\n".join(f"    {t}" for t in tests)))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    mutmut = Path(sys.executable).with_name("mutmut")
    subprocess.run([str(mutmut), "run", "--max-children", str(max_children)], cwd=work,
                   env=env, check=False)
    out = subprocess.run([str(mutmut), "results"], cwd=work, env=env, capture_output=True,
                         text=True, check=False)
    print(f"== {name}: survivors\n{out.stdout}")


if __name__ == "__main__":
    for group in sys.argv[1:] or list(GROUPS):
        run_group(group)
