"""NewtonLOO vs classical (ExactHessian) influence against leave-one-out retraining.

For each setting, every training sample is left out in turn and the model refit
to machine precision (LogisticRegression, newton-cholesky, tol 1e-14); the
actual change of validation log-loss is compared with each method's estimate.

Run: ``.venv/bin/python benchmarks/methods/bench_newton_loo.py [--cost]``
"""
import argparse
import warnings

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_wine, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import Utility, influence_scores
from skinfluence.datasets import flip_labels
from skinfluence.models.linear import LinearModelAdapter

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _measure import best_time, peak_memory  # noqa: E402  (benchmarks/_measure.py)


def dataset(name, seed=0):
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
    elif name == "wine":
        X, y = load_wine(return_X_y=True)
    elif name == "separable_binary":
        X, y = make_classification(400, 5, n_informative=4, n_redundant=0, n_classes=2,
                                   n_clusters_per_class=1, class_sep=3.0, random_state=seed)
    elif name == "separable_3class":
        X, y = make_classification(400, 5, n_informative=4, n_redundant=0, n_classes=3,
                                   n_clusters_per_class=1, class_sep=3.0, random_state=seed)
    X = StandardScaler().fit_transform(X)
    perm = np.random.default_rng(seed).permutation(len(y))
    return X[perm], y[perm]


def faithfulness(name, C, flip, seed=0):
    X, y = dataset(name, seed)
    n_tr = int(0.7 * len(y))
    X_tr, y_tr, X_val, y_val = X[:n_tr], y[:n_tr], X[n_tr:], y[n_tr:]
    if flip:
        y_tr, _ = flip_labels(y_tr, 0.1, random_state=seed)
    est = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-14, max_iter=1000)
    model = clone(est).fit(X_tr, y_tr)
    a = LinearModelAdapter(model)
    terms = Utility().terms(a, X_val, y_val)
    base = a.objective_value(terms)
    actual = np.empty(n_tr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n_tr):
            keep = np.arange(n_tr) != i
            refit = clone(est).fit(X_tr[keep], y_tr[keep])
            actual[i] = LinearModelAdapter(refit).objective_value(terms) - base
    res = influence_scores(model, X_tr, y_tr, X_val, y_val, method="newton_loo",
                           return_result=True)
    exact = res.extras["first_order_scores"] / n_tr
    return dict(
        newton_p=pearsonr(res.scores, actual)[0], newton_s=spearmanr(res.scores, actual)[0],
        exact_p=pearsonr(exact, actual)[0], exact_s=spearmanr(exact, actual)[0],
        max_leverage=res.leverage.max(), n=n_tr, K=len(np.unique(y)),
    )


def table():
    rows = []
    print("| data | K | C | flips | n | NewtonLOO Pearson | ExactHessian Pearson | "
          "NewtonLOO Spearman | ExactHessian Spearman | max leverage |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in ("breast_cancer", "wine", "separable_binary", "separable_3class"):
        for C in (0.1, 1.0, 10.0):
            for flip in (False, True):
                r = faithfulness(name, C, flip)
                rows.append(r)
                print(f"| {name} | {r['K']} | {C} | {'10%' if flip else '0'} | {r['n']} | "
                      f"{r['newton_p']:.4f} | {r['exact_p']:.4f} | {r['newton_s']:.4f} | "
                      f"{r['exact_s']:.4f} | {r['max_leverage']:.3f} |", flush=True)
    short_n = sum(1 - r["newton_p"] for r in rows)
    short_e = sum(1 - r["exact_p"] for r in rows)
    worst = min(r["newton_p"] - r["exact_p"] for r in rows)
    print(f"\nsummed shortfall (1 - Pearson): NewtonLOO {short_n:.4f}, ExactHessian {short_e:.4f}"
          f" (ratio {short_n / short_e:.3f}); worst NewtonLOO - ExactHessian: {worst:+.4f}")


def cost(n=100_000, d=100, repeats=3):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) + rng.standard_normal(n) > 0).astype(int)
    X_val, y_val = X[:5000], y[:5000]
    model = LogisticRegression(C=1.0).fit(X, y)
    out = {}
    for method in ("exact_hessian", "newton_loo"):
        run = (lambda m=method: influence_scores(model, X, y, X_val, y_val, method=m))
        out[method] = (best_time(run, repeats), peak_memory(run))
        print(f"{method}: best of {repeats} {out[method][0]:.3f} s, peak traced memory "
              f"{out[method][1] / 2**20:.1f} MiB (X itself: {X.nbytes / 2**20:.0f} MiB)")
    print(f"NewtonLOO / ExactHessian time: {out['newton_loo'][0] / out['exact_hessian'][0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cost", action="store_true", help="only the n=1e5, d=100 cost run")
    args = parser.parse_args()
    if args.cost:
        cost()
    else:
        table()
        cost()
