"""Corrupted regression targets: skinfluence against cleanlab, Huber and RANSAC.

For each dataset, corruption level and seed: a 70/30 train/test split,
features standardised on the training part, a share of the *training*
targets shifted by a large amount (``+-U(5, 10)`` target standard deviations,
random sign; the test targets stay clean), then, interleaved in one process:

- ``plain``: ``Ridge(alpha=1)`` on the corrupted targets;
- ``trim_auto``: ``InfluenceTrimmer(Ridge(alpha=1), fraction="auto")``, all defaults
  (5-fold cross-fitting, IP, residual-trusted held-out rows, the MAD count);
- ``relabel_auto``: ``InfluenceRelabeler(Ridge(alpha=1), fraction="auto")`` (the
  flagged targets replaced by their held-out predictions);
- ``CleanLearning``: cleanlab's ``cleanlab.regression.learn.CleanLearning(Ridge(alpha=1))``
  with its defaults (it drops the rows it flags and refits);
- ``Huber``: ``HuberRegressor(max_iter=1000)`` (its defaults: epsilon 1.35, alpha 1e-4);
- ``RANSAC``: ``RANSACRegressor(random_state=seed)`` (its defaults: LinearRegression,
  the MAD residual threshold).

Reported per cell (mean +- std over seeds): test RMSE, flag precision / recall
of the rows each method sets aside (trimmed, relabeled, cleanlab's issues,
Huber's ``outliers_``, RANSAC's outliers), fit time; and the paired difference
of ``trim_auto``'s RMSE to the best of CleanLearning / Huber / RANSAC with its
standard error.

Data sets (all offline): scikit-learn's ``load_diabetes`` (442 rows) and
``make_friedman1`` (1,000 rows, noise 1); the bundled Adult table
(``skinfluence.datasets.load_adult``, target ``hours_per_week``, the other 12
columns one-hot encoded, a random subsample of 3,000 training rows per seed
from its training part and 2,000 test rows from its test part); statsmodels'
bundled ``star98`` table (303 California school districts; target: the share
of students above the national median in maths, ``NABOVE / (NABOVE + NBELOW)``,
the other 20 columns as features).

Needs cleanlab and statsmodels (benchmark-only): ``pip install cleanlab statsmodels``.

Run:  nice python benchmarks/cleaning/bench_regression.py [--seeds 5]
          [--datasets diabetes,friedman1]
"""
import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.linear_model import HuberRegressor, RANSACRegressor, Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceRelabeler, InfluenceTrimmer

LEVELS = [0.0, 0.1, 0.2]
ROWS = ["plain", "trim_auto", "relabel_auto", "CleanLearning", "Huber", "RANSAC"]
PEERS = ["CleanLearning", "Huber", "RANSAC"]


def load(name, seed):
    rng = np.random.RandomState(seed)
    if name == "diabetes":
        X, y = load_diabetes(return_X_y=True)
    elif name == "friedman1":
        X, y = make_friedman1(1000, noise=1.0, random_state=seed)
    elif name == "star98":
        import statsmodels.api as sm

        d = sm.datasets.star98.load_pandas().data
        y = (d["NABOVE"] / (d["NABOVE"] + d["NBELOW"])).to_numpy()
        X = d.drop(columns=["NABOVE", "NBELOW"]).to_numpy(dtype=float)
    elif name == "adult":
        import pandas as pd
        from skinfluence.datasets import load_adult

        d = load_adult(as_frame=True)
        frames = []
        for part, size in ((d.X_train, 3000), (d.X_test, 2000)):
            frames.append(part.iloc[rng.choice(len(part), size, replace=False)])
        both = pd.get_dummies(pd.concat(frames), dtype=float)
        y = both.pop("hours_per_week").to_numpy(dtype=np.float64)
        X = both.to_numpy()
        return X[:3000], X[3000:], y[:3000], y[3000:]
    else:
        raise ValueError(name)
    return train_test_split(X, y, test_size=0.3, random_state=seed)


def corrupt(y, level, rng):
    n_bad = int(round(level * len(y)))
    bad = rng.choice(len(y), n_bad, replace=False)
    y = np.asarray(y, dtype=np.float64).copy()
    y[bad] += rng.choice([-1.0, 1.0], n_bad) * rng.uniform(5, 10, n_bad) * y.std()
    flags = np.zeros(len(y), dtype=bool)
    flags[bad] = True
    return y, flags


def run_cell(name, level, seed):
    from cleanlab.regression.learn import CleanLearning

    X_tr, X_te, y_tr, y_te = load(name, seed)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    y_obs, bad = corrupt(y_tr, level, np.random.RandomState(1000 + seed))
    out = {}

    def fit(key, make, flagged):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make()
        seconds = time.perf_counter() - start
        pred = model.predict(X_te)
        flags = flagged(model)
        tp = int((flags & bad).sum())
        out[key] = dict(rmse=float(np.sqrt(np.mean((pred - y_te) ** 2))), seconds=seconds,
                        precision=tp / flags.sum() if flags.sum() else np.nan,
                        recall=tp / bad.sum() if bad.sum() else np.nan, n_flags=int(flags.sum()))

    none = lambda m: np.zeros(len(y_obs), dtype=bool)  # noqa: E731
    fit("plain", lambda: Ridge(alpha=1.0).fit(X_tr, y_obs), none)
    fit("trim_auto", lambda: InfluenceTrimmer(Ridge(alpha=1.0), fraction="auto",
                                              random_state=seed).fit(X_tr, y_obs),
        lambda m: ~m.support_)
    fit("relabel_auto", lambda: InfluenceRelabeler(Ridge(alpha=1.0), fraction="auto",
                                                   random_state=seed).fit(X_tr, y_obs),
        lambda m: m.relabeled_)
    fit("CleanLearning", lambda: CleanLearning(Ridge(alpha=1.0), seed=seed).fit(X_tr, y_obs),
        lambda m: m.get_label_issues()["is_label_issue"].to_numpy())
    fit("Huber", lambda: HuberRegressor(max_iter=1000).fit(X_tr, y_obs), lambda m: m.outliers_)
    fit("RANSAC", lambda: RANSACRegressor(random_state=seed).fit(X_tr, y_obs),
        lambda m: ~m.inlier_mask_)
    return out


def fmt(values, digits=3):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return "-"
    return f"{v.mean():.{digits}f} +- {v.std():.{digits}f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", default="diabetes,friedman1,adult,star98")
    parser.add_argument("--levels", default=",".join(str(v) for v in LEVELS))
    args = parser.parse_args()
    levels = [float(v) for v in args.levels.split(",")]
    for name in args.datasets.split(","):
        for level in levels:
            cells = []
            with threadpool_limits(1):  # BLAS pinned to one thread for every method
                for seed in range(args.seeds):
                    cells.append(run_cell(name, level, seed))
            print(f"\n### {name}, {level:.0%} of training targets corrupted "
                  f"({args.seeds} seeds)\n")
            print("| method | test RMSE | flag precision | flag recall | flags | fit s |")
            print("|---|---|---|---|---|---|")
            for key in ROWS:
                col = lambda k: [c[key][k] for c in cells]  # noqa: E731
                print(f"| {key} | {fmt(col('rmse'))} | {fmt(col('precision'), 2)} | "
                      f"{fmt(col('recall'), 2)} | {fmt(col('n_flags'), 1)} | "
                      f"{fmt(col('seconds'), 2)} |")
            ours = np.array([c["trim_auto"]["rmse"] for c in cells])
            best = np.array([min(c[k]["rmse"] for k in PEERS) for c in cells])
            plain = np.array([c["plain"]["rmse"] for c in cells])
            diff, diff_p = ours - best, ours - plain
            se = lambda d: d.std(ddof=1) / np.sqrt(len(d))  # noqa: E731
            print(f"\ntrim_auto - best peer (paired per seed): {diff.mean():+.4f} "
                  f"(s.e. {se(diff):.4f}); trim_auto - plain: {diff_p.mean():+.4f} "
                  f"(s.e. {se(diff_p):.4f})", flush=True)


if __name__ == "__main__":
    main()
