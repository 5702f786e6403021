"""SampledHessian samplers vs ExactHessian on real data.

L2-logistic (C=1) with 10% flipped training labels; for each sampler and subset
fraction, 20 seeds: Spearman of the sampled-Hessian scores with ExactHessian's
(mean, std, worst), and the Hessian-build time against the full Hessian's.

Run: ``.venv/bin/python benchmarks/methods/bench_samplers.py`` (table) and ``... --cost``
(build time)
"""

import numpy as np
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import SampledHessian, influence_scores
from skinfluence.datasets import flip_labels
from skinfluence.models.linear import LinearModelAdapter
from skinfluence.methods.samplers import SAMPLERS

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _measure import best_time  # noqa: E402  (benchmarks/_measure.py)


def data(name):
    if name == "digits (0-4 vs 5-9)":
        X, y = load_digits(return_X_y=True)
        y = (y >= 5).astype(int)
    else:
        X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    perm = np.random.default_rng(0).permutation(len(y))
    X, y = X[perm], y[perm]
    n = int(0.7 * len(y))
    y_tr, _ = flip_labels(y[:n], 0.1, random_state=0)
    return X[:n], y_tr, X[n:], y[n:]


def main(seeds=20):
    print("| data | n | P | sampler | subset | Spearman mean | std | worst | "
          "H build time / full |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("digits (0-4 vs 5-9)", "breast_cancer"):
        X, y, X_val, y_val = data(name)
        model = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
        exact = influence_scores(model, X, y, X_val, y_val, method="exact_hessian")
        a = LinearModelAdapter(model)
        train = a.training_data(X, y)
        t_full = best_time(lambda: a.hessian(train))
        for fraction in (0.1, 0.2):
            m = int(round(fraction * train.n))
            for sampler in ("random", "feature", "logit"):
                rho = []
                for seed in range(seeds):
                    s = influence_scores(model, X, y, X_val, y_val, random_state=seed,
                                         method=SampledHessian(sampler=sampler,
                                                               fraction=fraction))
                    rho.append(spearmanr(s, exact)[0])
                rng = np.random.default_rng(0)
                smp = SAMPLERS[sampler]()
                t_s = best_time(lambda: a.hessian(train, *smp.sample(a, train, m, rng)))
                rho = np.array(rho)
                print(f"| {name} | {train.n} | {a.n_params} | {sampler} | {fraction:.0%} | "
                      f"{rho.mean():.3f} | {rho.std():.3f} | {rho.min():.3f} | "
                      f"{t_s / t_full:.2f} |", flush=True)


if __name__ == "__main__" and "--cost" not in __import__("sys").argv:
    main()


def build_cost(n=200_000, d=200, fraction=0.1):
    """Hessian-build time at a size where it matters: sampled (sampling included) vs full."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) / np.sqrt(d) + rng.standard_normal(n) > 0).astype(int)
    model = LogisticRegression(C=1.0).fit(X, y)
    a = LinearModelAdapter(model)
    train = a.training_data(X, y)
    t_full = best_time(lambda: a.hessian(train), repeats=2)
    m = int(fraction * n)
    print(f"\nHessian build, n={n:,}, d={d}: full {t_full:.2f} s")
    for sampler in ("random", "feature", "logit"):
        smp = SAMPLERS[sampler]()
        r = np.random.default_rng(0)
        t_s = best_time(lambda: a.hessian(train, *smp.sample(a, train, m, r)), repeats=2)
        print(f"  {sampler:8s} {fraction:.0%}: {t_s:.2f} s = {t_s / t_full:.2f} x full")


if __name__ == "__main__" and "--cost" in __import__("sys").argv:
    build_cost()
