"""The nested refit check on the constructions its tests and guide pages quote.

Seeds 0-19 (classification) and 0-9 (regression), every default:

- ``clean3``: 210 rows, 3 classes of 60 / 30 / 10% (``make_classification``,
  class_sep 0.8, no flipped label), ``InfluenceTrimmer(LogisticRegression(),
  fraction="auto")``: candidates counted, rows trimmed;
- ``lognormal``: 300 rows, log-normal targets (a clean skewed target, as
  incomes are), ``InfluenceTrimmer(Ridge(), fraction="auto")``;
- ``shifted``: 300 rows, linear targets with 10% shifted by 8 noise standard
  deviations: whether the check acted and whether it trimmed exactly them;
- on ``lognormal``, the p-values other paired tests would give (signed-rank on
  absolute and on squared errors) beside the check's t-test on squared errors.

Run:  OMP_NUM_THREADS=1 python benchmarks/cleaning/bench_nested_check.py
"""
import warnings

import numpy as np
from threadpoolctl import threadpool_limits
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression, Ridge

from skinfluence import InfluenceTrimmer


def clean3(seed):
    X, y = make_classification(210, n_features=8, n_informative=4, n_classes=3,
                               n_clusters_per_class=1, weights=[0.6, 0.3, 0.1],
                               class_sep=0.8, flip_y=0.0, random_state=seed)
    trim = InfluenceTrimmer(LogisticRegression(), fraction="auto", random_state=0).fit(X, y)
    return trim.refit_check_["candidates"], trim.n_trimmed_


def regression(seed):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(300, 4))
    y = np.exp(X @ np.array([0.5, 0.3, 0.0, 0.0]) + rng.normal(scale=0.6, size=300))
    clean = InfluenceTrimmer(Ridge(), fraction="auto", random_state=0).fit(X, y)
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(300, 4))
    y = X @ np.array([1.0, 0.5, 0.0, 0.0]) + rng.normal(scale=0.5, size=300)
    corrupted = rng.choice(300, 30, replace=False)
    y[corrupted] += rng.choice([-1, 1], 30) * 8
    shifted = InfluenceTrimmer(Ridge(), fraction="auto", random_state=0).fit(X, y)
    exact = set(np.flatnonzero(~shifted.support_)) == set(corrupted)
    return (clean.refit_check_["candidates"], clean.n_trimmed_,
            shifted.refit_check_["acted"], round(shifted.refit_check_["p_value"], 3), exact)


def paired_errors(X, y, random_state=0):
    """(absolute, squared) held-out error gains of the regressor's nested check, written out
    as the check runs it (5 outer folds, 3 inner, robust z > 3.5), to compare tests."""
    from sklearn.model_selection import KFold
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    outer_seed, check_seed = (int(rng.randint(np.iinfo(np.int32).max)) for _ in range(2))
    gains = []
    for k, (tr, va) in enumerate(KFold(5, shuffle=True, random_state=outer_seed).split(X)):
        inner = np.empty(len(tr))
        for itr, iva in KFold(3, shuffle=True, random_state=check_seed + k).split(tr):
            inner[iva] = Ridge().fit(X[tr[itr]], y[tr[itr]]).predict(X[tr[iva]])
        r = y[tr] - inner
        dev = np.abs(r - np.median(r))
        drop = dev / (1.4826 * np.median(dev)) > 3.5
        if drop.any():
            e_b = y[va] - Ridge().fit(X[tr], y[tr]).predict(X[va])
            e_a = y[va] - Ridge().fit(X[tr[~drop]], y[tr[~drop]]).predict(X[va])
            gains.append(np.column_stack([np.abs(e_b) - np.abs(e_a), e_b ** 2 - e_a ** 2]))
    return np.vstack(gains)


def compare_tests(seed):
    """One-sided p-values on clean log-normal targets: signed-rank on absolute and on
    squared errors, and the t-test on squared errors (the check's)."""
    from scipy.stats import ttest_1samp, wilcoxon

    rng = np.random.RandomState(seed)
    X = rng.normal(size=(300, 4))
    y = np.exp(X @ np.array([0.5, 0.3, 0.0, 0.0]) + rng.normal(scale=0.6, size=300))
    d = paired_errors(X, y)
    return tuple(round(float(p), 3) for p in (
        wilcoxon(d[d[:, 0] != 0, 0], alternative="greater").pvalue,
        wilcoxon(d[d[:, 1] != 0, 1], alternative="greater").pvalue,
        ttest_1samp(d[:, 1], 0.0, alternative="greater").pvalue))


def main():
    warnings.filterwarnings("ignore")
    with threadpool_limits(1):
        rows = [clean3(seed) for seed in range(20)]
        print("clean3 (seeds 0-19): candidates", [r[0] for r in rows], "trimmed",
              [r[1] for r in rows])
        rows = [regression(seed) for seed in range(10)]
        print("lognormal (seeds 0-9): candidates", [r[0] for r in rows], "trimmed",
              [r[1] for r in rows])
        print("shifted (seeds 0-9): acted", [r[2] for r in rows], "p", [r[3] for r in rows],
              "exactly the shifted rows where acted",
              all(r[4] for r in rows if r[2]))
        tests = [compare_tests(seed) for seed in range(10)]
        print("lognormal, one-sided p (seeds 0-9): signed-rank |e|", [t[0] for t in tests],
              "signed-rank e^2", [t[1] for t in tests], "t-test e^2", [t[2] for t in tests])


if __name__ == "__main__":
    main()
