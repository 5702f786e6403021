"""Does ``fraction="auto"`` decide right? Any classifier, tables the other benchmarks never used.

For each table, model, noise kind and seed: a stratified 70/30 split, features
standardised on the training part, the training labels corrupted (noise kinds
of ``bench_label_cleaning.py``), then, interleaved in one process:

- ``plain``: the model fitted on the noisy labels;
- ``auto``: ``InfluenceTrimmer(model, fraction="auto")`` with every default
  (a random forest or gradient boosting has no adapter: its rows are ranked by
  their held-out probability of the given label);
- ``CleanLearning``: cleanlab's ``CleanLearning(model, cv_n_folds=5)``.

The nested refit check's tallies are recorded with, for every amount it weighs
(half and all of the candidates), the test accuracy of the model refitted
without that many candidates, so that the decision under another test level
``alpha`` can be replayed without refitting (``--report --alpha``).

Tables (none used by the other benchmarks): ``iris`` (150 rows, 3 classes);
``anes`` (statsmodels' 1996 election survey, 944 rows, party identification
collapsed to Democrat / Independent / Republican: 52 / 4 / 44%); ``mode``
(statsmodels' travel mode choice, 840 rows, 25% chosen); ``visits`` (statsmodels'
RAND health insurance experiment, 5,000 rows drawn per seed of 20,190, 8 or
more doctor visits: 9%). Models: ``LogisticRegression(max_iter=2000)``,
``RandomForestClassifier(100)``, ``HistGradientBoostingClassifier()``.

Needs cleanlab and statsmodels (benchmark-only dependencies).

Run:    python benchmarks/cleaning/bench_cleaning_decision.py --seeds 0-4 --out runs.jsonl
Report: python benchmarks/cleaning/bench_cleaning_decision.py --report --out runs.jsonl
(per-cell table, the targets on the tuning and held-out tables, the candidates
acted on without the check, and the targets at other test levels)
"""
import argparse
import json
import os
import sys
import time
import warnings
from unittest import mock

import numpy as np
from threadpoolctl import threadpool_limits
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceTrimmer
from skinfluence.cleaning import _label_noise, _refit_check

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_label_cleaning import corrupt, seeds_arg  # noqa: E402

TABLES = ["iris", "anes", "mode", "visits"]
MODELS = ["lr", "rf", "hgb"]
NOISE = [("none", 0.0), ("uniform", 0.1), ("uniform", 0.3), ("classcond", 0.2),
         ("onesided", 0.2), ("instance", 0.2)]
VISITS_ROWS = 5000


def load(name, seed):
    if name == "iris":
        X, y = load_iris(return_X_y=True)
    else:
        import statsmodels.api as sm

        if name == "anes":
            data = sm.datasets.anes96.load_pandas().data
            pid = data.pop("PID").to_numpy()
            data.pop("vote")  # the vote follows the party: it would be the label itself
            y = np.select([pid <= 2, pid == 3], [0, 1], 2)
            X = data.to_numpy(dtype=float)
        elif name == "mode":
            data = sm.datasets.modechoice.load_pandas().data
            y = data.pop("choice").to_numpy().astype(int)
            data.pop("individual")
            modes = np.eye(4)[data.pop("mode").to_numpy().astype(int) - 1]
            X = np.hstack([data.to_numpy(dtype=float), modes])
        else:
            data = sm.datasets.randhie.load_pandas().data
            y = (data.pop("mdvis") >= 8).to_numpy().astype(int)
            rows = np.random.RandomState(seed).choice(len(y), VISITS_ROWS, replace=False)
            X, y = data.to_numpy(dtype=float)[rows], y[rows]
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)


def model(kind, seed):
    if kind == "lr":
        return LogisticRegression(max_iter=2000)
    if kind == "rf":
        return RandomForestClassifier(100, random_state=seed, n_jobs=1)
    return HistGradientBoostingClassifier(random_state=seed)


def run_cell(table, kind, noise, rate, seed):
    X_tr, X_te, y_tr, y_te = load(table, seed)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    if noise == "classcond" and len(np.unique(y_tr)) == 2:  # 2 classes: 1 -> 0 at 2 rate
        rng = np.random.RandomState(seed)
        y_noisy, flipped = y_tr.copy(), np.zeros(len(y_tr), dtype=bool)
        ones = np.flatnonzero(y_tr == 1)
        flipped[rng.choice(ones, int(round(min(2 * rate, 0.45) * len(ones))), replace=False)] = 1
        zeros = np.flatnonzero(y_tr == 0)
        flipped[rng.choice(zeros, int(round(rate / 2 * len(zeros))), replace=False)] = True
        y_noisy = np.where(flipped, 1 - y_tr, y_tr)
    else:
        y_noisy, flipped = corrupt(y_tr, X_tr, noise, rate, np.random.RandomState(seed))
    out = {"table": table, "model": kind, "noise": noise, "rate": rate, "seed": seed,
           "true_rate": float(flipped.mean()), "n_train": len(y_tr)}

    start = time.perf_counter()
    plain = model(kind, seed).fit(X_tr, y_noisy)
    out["plain"] = {"acc": float(plain.score(X_te, y_te)), "time": time.perf_counter() - start}

    seen = {}
    decide = _label_noise.decide

    def spy(issues, n_rows, check=None):
        seen["issues"] = issues
        return decide(issues, n_rows, check)

    start = time.perf_counter()
    with mock.patch.object(_label_noise, "decide", spy), \
            mock.patch("skinfluence.estimators._selection.decide", spy):
        trim = InfluenceTrimmer(model(kind, seed), fraction="auto",
                                random_state=seed).fit(X_tr, y_noisy)
    elapsed = time.perf_counter() - start
    flags = ~trim.support_
    check = dict(trim.refit_check_)
    check["per_amount"] = {str(a): v for a, v in (check["per_amount"] or {}).items()}
    by_amount = {"0.0": float(plain.score(X_te, y_te))}
    for amount in _refit_check.AMOUNTS:  # replayable decisions: the refit at every amount
        drop = seen["issues"].flags(len(y_noisy), amount)
        by_amount[str(amount)] = float(model(kind, seed).fit(X_tr[~drop], y_noisy[~drop])
                                       .score(X_te, y_te)) if drop.any() else by_amount["0.0"]
    out["auto"] = {"acc": float(trim.score(X_te, y_te)), "time": elapsed,
                   "share": float(flags.mean()), "noise": float(trim.noise_rate_),
                   "prec": float(flipped[flags].mean()) if flags.any() else None,
                   "check": check, "acc_by_amount": by_amount}

    from cleanlab.classification import CleanLearning

    start = time.perf_counter()
    cl = CleanLearning(model(kind, seed), seed=seed, cv_n_folds=5).fit(X_tr, y_noisy)
    flags = cl.label_issues_df["is_label_issue"].to_numpy()
    out["CleanLearning"] = {"acc": float(cl.score(X_te, y_te)),
                            "time": time.perf_counter() - start, "share": float(flags.mean()),
                            "prec": float(flipped[flags].mean()) if flags.any() else None}
    return out


def run(args):
    done = set()
    if os.path.exists(args.out):
        with open(args.out) as f:
            for line in f:
                r = json.loads(line)
                done.add((r["table"], r["model"], r["noise"], r["rate"], r["seed"]))
    with open(args.out, "a") as f:
        for seed in args.seeds:
            for table in args.tables:
                for kind in args.models:
                    for noise, rate in NOISE:
                        if (table, kind, noise, rate, seed) in done:
                            continue
                        r = run_cell(table, kind, noise, rate, seed)
                        f.write(json.dumps(r) + "\n")
                        f.flush()
                        a, p, c = r["auto"], r["plain"], r["CleanLearning"]
                        print(f"{table:7s} {kind:4s} {noise:9s} {rate:.1f} s{seed}: plain "
                              f"{p['acc']:.3f} auto {a['acc']:.3f} (trim {a['share']:.2f}, "
                              f"amount {a['check']['amount']}) CL {c['acc']:.3f} "
                              f"(trim {c['share']:.2f}); time auto/CL "
                              f"{a['time'] / c['time']:.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=seeds_arg, default=list(range(5)))
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", default="runs_decision.jsonl")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--alpha", type=float, default=None,
                        help="replay the decision at this test level (default: the library's)")
    args = parser.parse_args()
    args.tables, args.models = args.tables.split(","), args.models.split(",")
    if args.report:
        from report_cleaning_decision import alpha_sweep, candidates_table, report

        report(args.out, args.alpha)
        print("\n## The candidates without the check (noisy cells)\n")
        candidates_table(args.out)
        print("\n## The level of the check\n")
        alpha_sweep(args.out)
        return
    warnings.filterwarnings("ignore")
    with threadpool_limits(1):
        run(args)


if __name__ == "__main__":
    main()
