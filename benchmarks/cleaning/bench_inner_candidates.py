"""Why the nested check has little power: inner candidates against full-data ones.

On one table, model and noise kind (default: ``mode``, gradient boosting, 30% uniform
flips), for each of 5 outer folds, the fold's training part is refitted without

- ``inner``: the candidates chosen from 3 inner folds of the part (what the nested
  check uses),
- ``full``: the candidates chosen from the 5-fold held-out probabilities of all the
  rows (chosen with the outer fold's labels: the leak the nested check avoids),
- ``oracle``: the rows whose label was flipped,

and the refit and the part's own model predict the outer fold. Printed per seed and
kind, summed over the folds: held-out rows only the refit / only the original gets
right on the given labels, then on the true labels.

Run:  OMP_NUM_THREADS=1 python benchmarks/cleaning/bench_inner_candidates.py \
          [table model noise rate]
"""
import sys
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skinfluence.cleaning._label_noise import class_candidates

from bench_cleaning_decision import load, model
from bench_label_cleaning import corrupt


def held_out_proba(est, X, y, folds, K):
    P = np.zeros((len(y), K))
    for tr, va in folds:
        P[va] = clone(est).fit(X[tr], y[tr]).predict_proba(X[va])
    return P


def run(table, kind, noise, rate, seed):
    X, _, y, _ = load(table, seed)
    X = StandardScaler().fit_transform(X)
    noisy, flipped = corrupt(y, X, noise, rate, np.random.RandomState(seed))
    est, K = model(kind, seed), len(np.unique(noisy))
    folds = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(X, noisy))
    full = class_candidates(held_out_proba(est, X, noisy, folds, K), noisy, K)
    totals = {k: np.zeros(4, dtype=int) for k in ("inner", "full", "oracle")}
    for tr, va in folds:
        before = clone(est).fit(X[tr], noisy[tr]).predict(X[va])
        inner_folds = StratifiedKFold(3, shuffle=True, random_state=seed).split(X[tr], noisy[tr])
        inner = held_out_proba(est, X[tr], noisy[tr], list(inner_folds), K)
        drops = {"inner": class_candidates(inner, noisy[tr], K), "full": full[tr],
                 "oracle": flipped[tr]}
        for name, drop in drops.items():
            after = clone(est).fit(X[tr][~drop], noisy[tr][~drop]).predict(X[va])
            d = before != after
            totals[name] += [np.sum(after[d] == noisy[va][d]),
                             np.sum(before[d] == noisy[va][d]),
                             np.sum(after[d] == y[va][d]), np.sum(before[d] == y[va][d])]
    return totals


def main():
    given = sys.argv[1:5]
    table, kind, noise, rate = given + ["mode", "hgb", "uniform", "0.3"][len(given):]
    warnings.filterwarnings("ignore")
    with threadpool_limits(1):
        for seed in range(5):
            totals = run(table, kind, noise, float(rate), seed)
            print(f"seed {seed}: " + "; ".join(
                f"{k}: given {v[0]} / {v[1]}, true {v[2]} / {v[3]}" for k, v in totals.items()),
                flush=True)


if __name__ == "__main__":
    main()
