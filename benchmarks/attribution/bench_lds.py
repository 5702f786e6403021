"""Linear datamodeling score (LDS) of every method, and influence_matrix against the per-row loop.

Linear part (logistic regression, C=1): digits (pixels in [0, 1], and
standardised), breast cancer, wine and Adult (bundled; subsampled to 1,000
training / 100 test rows), each a fixed split (see :func:`split`). For each
seed: every method's ``influence_matrix`` (methods interleaved, timed), then
the LDS (50 random halves refitted, per test row and aggregate) of all of
them on the same subsets. ExactHessian and NewtonLOO are
also timed as the per-row loop (``influence_scores`` once per test row) on
``--loop-rows`` test rows, reported per test row.

Usage (2-core CPU, BLAS and torch threads pinned to 1)::

    nice python benchmarks/attribution/bench_lds.py linear --seeds 0 1 2 3 4
"""
import argparse
import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import IPEnsemble, influence_matrix, influence_scores
from skinfluence.datasets import load_adult
from skinfluence.metrics import linear_datamodeling_score

LINEAR_METHODS = {
    "ip": "ip",
    "ip_ensemble(5)": IPEnsemble(n_members=5),
    "exact_hessian": "exact_hessian",
    "sampled_hessian": "sampled_hessian",
    "newton_loo": "newton_loo",
}
LOOPED = ("exact_hessian", "newton_loo")


DATASETS = ("digits", "digits_standardised", "breast_cancer", "wine", "adult")


def split(name, n_train=1000, n_test=100):
    """(X_train, y_train, X_test, y_test), a fixed random split (seed 0).

    "digits": pixels scaled to [0, 1] (x / 16), as dattri's MNIST benchmarks
    scale theirs; "digits_standardised" and the others: StandardScaler fitted
    on the training rows. Adult: 1,000 + 100 rows drawn from its 45,222.
    """
    if name == "adult":
        d = load_adult()
        X, y = np.vstack([d.X_train, d.X_test]), np.concatenate([d.y_train, d.y_test])
    else:
        X, y = {"digits": load_digits, "digits_standardised": load_digits,
                "breast_cancer": load_breast_cancer,
                "wine": load_wine}[name](return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    n_test = min(n_test, len(y) // 4)
    te, tr = idx[:n_test], idx[n_test:n_test + n_train]
    if name == "digits":
        return X[tr] / 16.0, y[tr], X[te] / 16.0, y[te]
    scaler = StandardScaler().fit(X[tr])
    return scaler.transform(X[tr]), y[tr], scaler.transform(X[te]), y[te]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def linear(seeds, loop_rows, n_subsets):
    rows = []
    for name in DATASETS:
        X, y, Xt, yt = split(name)
        est = LogisticRegression(C=1.0, max_iter=5000)
        model = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
        for seed in seeds:
            mats, secs = {}, {}
            for label, method in LINEAR_METHODS.items():  # interleaved, one process
                mats[label], secs[label] = timed(lambda: influence_matrix(
                    model, X, y, Xt, yt, method=method, random_state=seed))
            loop = {}
            for label in LOOPED:
                pick = np.random.default_rng(seed).choice(len(yt), loop_rows, replace=False)
                _, t = timed(lambda: [influence_scores(
                    model, X, y, Xt[j:j + 1], yt[j:j + 1], method=LINEAR_METHODS[label],
                    random_state=seed) for j in pick])
                loop[label] = t / loop_rows
            lds = linear_datamodeling_score(est, X, y, Xt, yt, mats, n_subsets=n_subsets,
                                            random_state=seed)
            agg = linear_datamodeling_score(est, X, y, Xt, yt, mats, n_subsets=n_subsets,
                                            random_state=seed, aggregate=True)
            for label in LINEAR_METHODS:
                rows.append(dict(dataset=name, n_train=len(y), n_test=len(yt), seed=seed,
                                 method=label, lds=lds[label], aggregate_lds=agg[label],
                                 seconds=secs[label],
                                 loop_seconds_per_row=loop.get(label)))
                print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows):
    """Markdown table: mean +- std over seeds per (dataset, method)."""
    out = ["| dataset | method | LDS | aggregate LDS | matrix time (s) | per-row loop (s/row) "
           "| speed-up |", "|---|---|---|---|---|---|---|"]
    keys = sorted({(r["dataset"], r["method"]) for r in rows},
                  key=lambda k: (k[0], list(LINEAR_METHODS).index(k[1])
                                 if k[1] in LINEAR_METHODS else 99))
    for ds, m in keys:
        sel = [r for r in rows if r["dataset"] == ds and r["method"] == m]

        def ms(key, fmt="{:.3f}"):
            v = np.array([r[key] for r in sel], dtype=float)
            return (fmt + " +- " + fmt).format(v.mean(), v.std())

        speed = ""
        if sel[0].get("loop_seconds_per_row") is not None:
            per_row = np.array([r["seconds"] / r["n_test"] for r in sel])
            loop = np.array([r["loop_seconds_per_row"] for r in sel])
            ratio = loop / per_row
            speed = f"{ratio.mean():.0f}x +- {ratio.std():.0f}"
            loop_s = f"{loop.mean():.4f} +- {loop.std():.4f}"
        else:
            loop_s = ""
        out.append(f"| {ds} | {m} | {ms('lds')} | {ms('aggregate_lds')} | "
                   f"{ms('seconds', '{:.3f}')} | {loop_s} | {speed} |")
    return "\n".join(out)


def finish(rows, out, table):
    """Write the raw rows as JSON (when ``out`` is given) and print the summary table."""
    if out:
        with open(out, "w") as fh:
            json.dump(rows, fh)
    print(table(rows))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("part", choices=["linear"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--loop-rows", type=int, default=20)
    p.add_argument("--n-subsets", type=int, default=50)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    with threadpool_limits(1):
        rows = linear(args.seeds, args.loop_rows, args.n_subsets)
    finish(rows, args.out, summary)
