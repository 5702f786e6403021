"""Fairness on Adult: trimming with demographic-parity influence vs fairlearn.

Protocol: UCI Adult, its own train/test split
(30,162 / 15,060 rows), sensitive attribute sex (routed as
``sensitive_features``; it also stays a feature), features standardised on the
training rows. For each method and seed,
``InfluenceTrimmer(LogisticRegression(), objective=DemographicParity(), method=...,
validation=5)`` scores every training row once (5-fold cross-fitting); the
same scores (``scores=trimmer.scores_``, identical to a fresh fit with the
same random_state) are then trimmed at each fraction and the model refitted.
Reference points: the plain model, and fairlearn's
``ExponentiatedGradient(LogisticRegression(), DemographicParity())``.

Reported on the test set: accuracy and the demographic-parity gap of the hard
predictions (largest minus smallest group selection rate), mean +- std over seeds.

Run:  nice python benchmarks/bench_fairness.py [--seeds 3]
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skinfluence import DemographicParity, InfluenceTrimmer
from skinfluence.datasets import load_adult
from skinfluence.metrics import demographic_parity_difference

FRACTIONS = (0.01, 0.02, 0.05, 0.10, 0.15, 0.20)
METHODS = ("ip", "exact_hessian", "newton_loo")


def evaluate(model, X, y, s):
    pred = model.predict(X)
    return np.mean(pred == y), demographic_parity_difference(y, pred, sensitive_features=s)


def run(seeds):
    d = load_adult(sensitive="sex")
    scaler = StandardScaler().fit(d.X_train)
    X_tr, X_te = scaler.transform(d.X_train), scaler.transform(d.X_test)
    y_tr, y_te, s_tr, s_te = d.y_train, d.y_test, d.s_train, d.s_test

    def lr():
        return LogisticRegression(max_iter=1000)

    results = {"plain": [evaluate(lr().fit(X_tr, y_tr), X_te, y_te, s_te)]}
    timings = {}
    for method in METHODS:
        t0 = time.perf_counter()
        for seed in range(seeds):
            trim = InfluenceTrimmer(lr(), method=method, objective=DemographicParity(),
                                    fraction=FRACTIONS[0], random_state=seed)
            trim.fit(X_tr, y_tr, sensitive_features=s_tr)
            for frac in FRACTIONS:
                trim.set_params(fraction=frac).fit(X_tr, y_tr, scores=trim.scores_)
                results.setdefault((method, frac), []).append(evaluate(trim, X_te, y_te, s_te))
        timings[method] = (time.perf_counter() - t0) / seeds
    try:
        from fairlearn.reductions import DemographicParity as FLDemographicParity
        from fairlearn.reductions import ExponentiatedGradient
    except ImportError:  # pragma: no cover
        print("fairlearn not installed: no ExponentiatedGradient reference")
    else:
        t0 = time.perf_counter()
        for seed in range(seeds):
            eg = ExponentiatedGradient(lr(), FLDemographicParity())
            eg.fit(X_tr, y_tr, sensitive_features=s_tr)
            pred = eg.predict(X_te, random_state=seed)
            results.setdefault("eg", []).append(
                (np.mean(pred == y_te),
                 demographic_parity_difference(y_te, pred, sensitive_features=s_te)))
        timings["eg"] = (time.perf_counter() - t0) / seeds
    return results, timings


def fmt(vals, i):
    v = 100 * np.array([r[i] for r in vals])
    return f"{v.mean():.2f} +- {v.std():.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def table(results, timings, seeds):
    lines = ["| model | trim fraction | " + " | ".join(
        f"{m} accuracy | {m} DP gap" for m in METHODS) + " |",
        "|" + " --- |" * (2 + 2 * len(METHODS))]
    plain = results["plain"]
    lines.append("| plain LogisticRegression | 0 | " + " | ".join(
        f"{fmt(plain, 0)} | {fmt(plain, 1)}" for _ in METHODS) + " |")
    for frac in FRACTIONS:
        lines.append(f"| InfluenceTrimmer(DemographicParity) | {frac:.2f} | " + " | ".join(
            f"{fmt(results[(m, frac)], 0)} | {fmt(results[(m, frac)], 1)}" for m in METHODS)
            + " |")
    if "eg" in results:
        lines.append("")
        lines.append("| reference | accuracy | DP gap |")
        lines.append("| --- | --- | --- |")
        lines.append(f"| plain LogisticRegression | {fmt(plain, 0)} | {fmt(plain, 1)} |")
        lines.append(f"| fairlearn ExponentiatedGradient(LogisticRegression(), "
                     f"DemographicParity()) | {fmt(results['eg'], 0)} | {fmt(results['eg'], 1)} |")
    lines.append("")
    lines.append(f"Test accuracy and DP gap in % (mean +- std over {seeds} seeds: CV folds for "
                 "the trimmer, predict's randomisation for ExponentiatedGradient).")
    lines.append("Time per seed: " + ", ".join(
        f"{k} {v:.0f} s" for k, v in timings.items())
        + " (trimmer: scoring + 6 refits; EG: fit + predict).")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    t0 = time.perf_counter()
    with threadpool_limits(1):  # shared 2-core machine: threaded BLAS only oversubscribes
        results, timings = run(args.seeds)
    print(table(results, timings, args.seeds))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
