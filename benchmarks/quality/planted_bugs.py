"""Planted-bug run: one-line bugs put into a copy of the package, one at a time.

A cheaper stand-in for mutmut (``benchmarks/quality/mutation.py``) on modules whose
tests train many models: each bug below is a typical slip (off-by-one, sign
flip, wrong comparison, dropped term, wrong axis...). For each, the package
and its tests are copied to a temporary folder (the working tree is never
touched), the one line is changed there, and the module's own test files run
with ``pytest -x -q`` and ``OMP_NUM_THREADS=1``. A bug is *killed* when the
tests fail, *survived* when they pass. The unmodified copy is run first and
must pass.

Usage::

    python benchmarks/quality/planted_bugs.py [module ...] [--json out.json]

``module`` is one of the keys of :data:`MODULES` (default: all). Prints one
line per bug and a summary; the write-up is in ``benchmarks/quality/RESULTS_mutation.md``.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_LABEL_NOISE_TESTS = ["tests/cleaning/test_label_noise.py", "tests/cleaning/test_label_issues.py"]
_TRUSTED_TESTS = ["tests/estimators/test_estimators.py", "tests/cleaning/test_label_issues.py"]

_FAIR_TARGET = "skinfluence/estimators/_fair_target.py"

#: module -> (file, its own test files, [(bug id, line as written, the bug)])
MODULES = {
    "fair_target": (_FAIR_TARGET, ["tests/estimators/test_fairness.py"], [
        ("half-class budget dropped",
         "budget = {c: int(np.sum(eligible & (plan.y == c))) // 2",
         "budget = {c: int(np.sum(eligible & (plan.y == c))) // 1"),
        ("order by highest score (sign flip)",
         "cand = cand[np.argsort(frontier[cand], kind=\"stable\")]",
         "cand = cand[np.argsort(-frontier[cand], kind=\"stable\")]"),
        ("past-parity condition dropped",
         "ok = target - tolerance <= gap <= target and signed_gap >= -tolerance",
         "ok = target - tolerance <= gap <= target"),
        ("gap sign ignored",
         "signed_gap = gap if signed >= 0 else -gap",
         "signed_gap = gap"),
        ("weights normalised by the sum, not the mean",
         "w = w / w.mean()",
         "w = w / w.sum()"),
        ("relabel always to the first class",
         "y_fit = np.where(acted, np.where(self.plan.y == classes[0], classes[1], classes[0]),",
         "y_fit = np.where(acted, classes[0],"),
        ("standardised scores sign-flipped",
         "z[finite] = (scores[finite] - scores[finite].mean()) / scores[finite].std()",
         "z[finite] = (scores[finite].mean() - scores[finite]) / scores[finite].std()"),
        ("user sample_weight dropped when reweighting",
         "sw = params[\"sample_weight\"] if sw is None else sw * params[\"sample_weight\"]",
         "sw = params[\"sample_weight\"] if sw is None else sw"),
        ("equalized odds: false-positive cell dropped",
         "cells = [np.ones(len(y), bool)] if kind == \"demographic_parity\" else [y == pos, "
         "y != pos]",
         "cells = [np.ones(len(y), bool)] if kind == \"demographic_parity\" else [y == pos]"),
    ]),
    "robust_metrics": ("skinfluence/metrics.py", ["tests/metrics/test_metrics.py"], [
        ("binary tie counted as robust (> to >=)",
         "return known & (s * F[:, 0] > epsilon * np.linalg.norm(W[0], ord=order))",
         "return known & (s * F[:, 0] >= epsilon * np.linalg.norm(W[0], ord=order))"),
        ("linf ball with the linf norm instead of its dual l1",
         "_DUAL = {\"l2\": 2, \"linf\": 1}",
         "_DUAL = {\"l2\": 2, \"linf\": np.inf}"),
        ("binary sign flipped",
         "s = np.where(idx == 1, 1.0, -1.0)",
         "s = np.where(idx == 0, 1.0, -1.0)"),
        ("multiclass budget added instead of subtracted",
         "slack = F[rows, idx][:, None] - F - epsilon * pair[idx]",
         "slack = F[rows, idx][:, None] - F + epsilon * pair[idx]"),
        ("any class instead of every class",
         "return known & (slack > 0).all(axis=1)",
         "return known & (slack > 0).any(axis=1)"),
        ("sample_weight dropped",
         "return float(np.average(correct, weights=sample_weight))",
         "return float(np.mean(correct))"),
        ("unknown labels counted as correct",
         "known = classes[idx] == y  # a label the model cannot predict is never correct",
         "known = np.ones(len(y), bool)"),
        ("networks attacked only for epsilon > 1",
         "    if epsilon > 0:\n        attack = AdversarialRobustness(",
         "    if epsilon > 1:\n        attack = AdversarialRobustness("),
        ("pairwise norms over the wrong axis",
         "pair = np.linalg.norm(W[:, None, :] - W[None, :, :], ord=order, axis=2)",
         "pair = np.linalg.norm(W[:, None, :] - W[None, :, :], ord=order, axis=0)"),
        ("scorer ignores steps",
         "steps=self.steps, sample_weight=sample_weight)",
         "steps=1, sample_weight=sample_weight)"),
    ]),
    "torch_rows": ("skinfluence/models/_torch_rows.py", ["tests/models/test_torch_rows.py"], [
        ("slice stops one row early",
         "rows = range(*index.indices(len(self.dataset)))",
         "rows = range(*index.indices(len(self.dataset) - 1))"),
        ("float rows not cast to the model's dtype",
         "if x.is_floating_point():",
         "if not x.is_floating_point():"),
        ("NaN check only when every entry is NaN",
         "if not bool(torch.isfinite(x).all()):",
         "if not bool(torch.isfinite(x).any()):"),
        ("shape one row short",
         "self.shape = (len(dataset),) + tuple(first.shape[1:])",
         "self.shape = (len(dataset) - 1,) + tuple(first.shape[1:])"),
        ("single-element items accepted (< 2 to < 1)",
         "if not isinstance(item, (tuple, list)) or len(item) < 2:",
         "if not isinstance(item, (tuple, list)) or len(item) < 1:"),
        ("labels skip the first item",
         "return np.asarray([np.asarray(self._item(i)[1]).item() for i in range(len(self))])",
         "return np.asarray([np.asarray(self._item(i)[1]).item() for i in range(1, len(self))])"),
        ("DataLoader not unwrapped",
         "dataset = source.dataset if isinstance(source, torch.utils.data.DataLoader) else source",
         "dataset = source"),
        ("index lists read in sorted order",
         "rows = np.asarray(index.cpu() if torch.is_tensor(index) else index).ravel()",
         "rows = np.sort(np.asarray(index.cpu() if torch.is_tensor(index) else index).ravel())"),
        ("length probe one index early",
         "        dataset[n]\n",
         "        dataset[n - 1]\n"),
        ("empty check never true",
         "if n == 0:",
         "if n < 0:"),
    ]),
    "cli": ("skinfluence/cli.py", ["tests/cli/test_cli.py", "-k", "not demo"], [
        ("fraction 1 accepted",
         "_fraction = _argument(float, lambda v: 0 <= v < 1,",
         "_fraction = _argument(float, lambda v: 0 <= v <= 1,"),
        ("validation file not protected",
         "check_output(args.output, (args.file, args.validation), args.overwrite)",
         "check_output(args.output, (args.file,), args.overwrite)"),
        ("target drop checked against all but the first --drop",
         "if args.target in args.drop:",
         "if args.target in args.drop[1:]:"),
        ("only the first added column checked for a clash",
         "clash = [c for c in added if c in frame.columns]",
         "clash = [c for c in added[:1] if c in frame.columns]"),
        ("rows per class one short",
         "if counts.min() < cv:",
         "if counts.min() < cv - 1:"),
        ("ranks from 0",
         "rank[order] = np.arange(1, len(scores) + 1)",
         "rank[order] = np.arange(len(scores))"),
        ("temperature not passed on",
         "params = {\"max_weight\": args.max_weight, \"temperature\": args.temperature}",
         "params = {\"max_weight\": args.max_weight}"),
        ("fraction auto for every objective",
         "elif args.target_gap is None and args.objective == \"utility\":",
         "elif args.target_gap is None:"),
        ("SIGTERM reported as Ctrl-C",
         "return 143 if isinstance(exc, _Terminated) else 130",
         "return 130"),
        ("--dropna reads the dropped columns too",
         "frame, n_dropped = drop_missing(frame, frame.columns.drop(unused), args.file)",
         "frame, n_dropped = drop_missing(frame, frame.columns, args.file)"),
    ]),
    "tabular": ("skinfluence/cli/_tabular.py", ["tests/cli/test_cli.py", "-k", "not demo"], [
        ("a name repeated twice passes",
         "repeated = sorted({n for n in names if names.count(n) > 1})",
         "repeated = sorted({n for n in names if names.count(n) > 2})"),
        ("gzip output written plain",
         "compression = \"gzip\" if str(path).lower().endswith(\".gz\") else None",
         "compression = None"),
        ("existing output replaced without --overwrite",
         "        if not overwrite:",
         "        if overwrite:"),
        ("input compared by path, not by file",
         "if source is not None and os.path.exists(source) and os.path.samefile(path, source):",
         "if source is not None and os.path.abspath(source) == os.path.abspath(path):"),
        ("identifier limit ignores the rows",
         "limit = max(MIN_IDENTIFIER_VALUES, IDENTIFIER_SHARE * len(X))",
         "limit = MIN_IDENTIFIER_VALUES"),
        ("empty columns never found",
         "empty = [c for c, n in counts.items() if n == len(X)]",
         "empty = [c for c, n in counts.items() if n > len(X)]"),
        ("impute strategy ignored",
         "numbers = make_pipeline(SimpleImputer(strategy=impute), numbers)",
         "numbers = make_pipeline(SimpleImputer(strategy=\"mean\"), numbers)"),
        ("--dropna keeps rows with any value",
         "keep = frame[list(columns)].notna().all(axis=1).to_numpy()",
         "keep = frame[list(columns)].notna().any(axis=1).to_numpy()"),
        ("private file permissions",
         "    return 0o666 & ~umask",
         "    return 0o600"),
        ("missing categories become the text 'nan'",
         "X[col] = X[col].map(lambda v: np.nan if pd.isna(v) else str(v)).astype(object)",
         "X[col] = X[col].map(lambda v: str(v)).astype(object)"),
        ("partial file left behind on an error",
         "        if os.path.exists(tmp):  # not renamed: an error or an interruption",
         "        if False:"),
    ]),
    "label_noise": ("skinfluence/cleaning/_label_noise.py", _LABEL_NOISE_TESTS, [
        ("thresholds: mean over every row, not the class's own",
         "thresholds = np.array([P[y == j, j].mean() if np.any(y == j) else np.inf",
         "thresholds = np.array([P[:, j].mean() if np.any(y == j) else np.inf"),
        ("a row counts for its first reached class, not its most probable",
         "return above.any(axis=1), np.argmax(np.where(above, P, -np.inf), axis=1)",
         "return above.any(axis=1), np.argmax(above, axis=1)"),
        ("counts include the diagonal",
         "counts = np.array([min(int(joint[c].sum() - joint[c, c]), len(by_class[c]))",
         "counts = np.array([min(int(joint[c].sum()), len(by_class[c]))"),
        ("counts read by column (given class <-> guessed class swapped)",
         "counts = np.array([min(int(joint[c].sum() - joint[c, c]), len(by_class[c]))",
         "counts = np.array([min(int(joint[:, c].sum() - joint[c, c]), len(by_class[c]))"),
        ("within-class rank by the other classes' probability",
         "key = key + rankdata(np.nan_to_num(np.asarray(proba)[rows, c], nan=1.0))",
         "key = key - rankdata(np.nan_to_num(np.asarray(proba)[rows, c], nan=1.0))"),
        ("sign test two-sided in effect (alpha doubled)",
         "return bool(binom.sf(better - 1, better + worse, 0.5) <= ALPHA)",
         "return bool(binom.sf(better - 1, better + worse, 0.5) <= 2 * ALPHA)"),
        ("margin dropped",
         "if discordant == 0 or gain <= MIN_GAIN * discordant:",
         "if discordant == 0 or gain <= 0:"),
        ("check declined but candidates acted on",
         "return Decision(mask=full if acted else np.zeros(n_rows, dtype=bool), acted=acted,",
         "return Decision(mask=full, acted=acted,"),
        ("memorisation threshold inverted",
         "use_scores = memorised is None or memorised <= 0.5",
         "use_scores = memorised is None or memorised > 0.5"),
    ]),
    "trusted_rows": ("skinfluence/cleaning/_crossfit.py", _TRUSTED_TESTS, [
        ("trusted rows: disagreeing rows kept",
         "agree = classes[np.argmax(out[\"proba_val\"], axis=1)] == y_v",
         "agree = classes[np.argmax(out[\"proba_val\"], axis=1)] != y_v"),
        ("trusted filter never applied",
         "        if (keep & agree).any():\n            keep &= agree",
         "        if False:\n            keep &= agree"),
        ("filter applied to objectives that read no labels",
         "filter_rows = trusted == \"agree\" and getattr(objective, \"label_loss\", True)",
         "filter_rows = trusted == \"agree\""),
    ]),
}


def _copy_tree(dest):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ("skinfluence", "tests"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("setup.cfg", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)


def _run_tests(dest, tests, timeout):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)  # the copy, first on sys.path as the working directory
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=dest, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.perf_counter() - start, ""
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED")
             or ln.startswith("ERROR")]
    verdict = "survived" if proc.returncode == 0 else "killed"
    return verdict, time.perf_counter() - start, lines[0][:160] if lines else ""


def run_module(key, timeout):
    path, tests, bugs = MODULES[key]
    results = []
    with tempfile.TemporaryDirectory(prefix="planted_") as tmp:
        dest = Path(tmp)
        _copy_tree(dest)
        target = dest / path
        original = target.read_text()
        check = subprocess.run([sys.executable, "-c", "import skinfluence; "
                                "print(skinfluence.__file__)"], cwd=dest, capture_output=True,
                               text=True, env=dict(os.environ, PYTHONPATH=""))
        assert check.stdout.strip().startswith(str(dest)), check.stdout + check.stderr
        verdict, seconds, _ = _run_tests(dest, tests, timeout)
        if verdict != "survived":
            raise SystemExit(f"{key}: the unmodified tests fail ({verdict}); fix them first.")
        print(f"{key}: baseline passes in {seconds:.0f} s", flush=True)
        for bug_id, line, planted in bugs:
            if original.count(line) != 1:
                raise SystemExit(f"{key}: {bug_id!r}: the line occurs {original.count(line)} "
                                 "times in the module (expected once); update the list.")
            target.write_text(original.replace(line, planted))
            try:
                verdict, seconds, first = _run_tests(dest, tests, timeout)
            finally:
                target.write_text(original)
            results.append(dict(module=key, file=path, bug=bug_id, verdict=verdict,
                                seconds=round(seconds, 1), first_failure=first))
            print(f"  {verdict:17s} {seconds:6.1f} s  {bug_id}  {first}", flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"any of {sorted(MODULES)} (default: all)")
    parser.add_argument("--json", help="write every result to this file")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per test run")
    args = parser.parse_args(argv)
    args.modules = args.modules or list(MODULES)
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown modules {unknown}; choose from {sorted(MODULES)}")
    results = []
    for key in args.modules:
        results += run_module(key, args.timeout)
    for key in args.modules:
        rows = [r for r in results if r["module"] == key]
        killed = sum(r["verdict"].startswith("killed") for r in rows)
        print(f"{key}: {killed}/{len(rows)} killed")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
