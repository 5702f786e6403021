"""Time and memory of one influence pass on boosted trees, against one fit of the model.

For n training rows of a synthetic binary table (20 features, 5% missing
values), each library's model (100 rounds, 31 leaves, learning rate 0.1, no
row sampling) is fitted once, then ``influence_scores`` runs on the mean
log-loss of 2,000 validation rows with each method (from 10^6 rows on,
``exact_hessian`` only, to keep the run under half an hour). Every (library, n, seed)
runs in its own process, so its peak resident memory is its own; the fit and
the passes are timed in that process, one after the other.

Run (BLAS / OpenMP threads pinned to 1 here, and every library told to use 1):

    OMP_NUM_THREADS=1 python benchmarks/trees/bench_trees_scale.py
    python benchmarks/trees/bench_trees_scale.py --sizes 10000 100000 --seeds 2

Writes ``RESULTS_trees_scale.md`` and ``.jsonl`` next to this file.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
METHODS = ("ip", "exact_hessian", "newton_loo")
LARGE = 1_000_000


def _data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + 2000, 20)).astype(np.float64)
    logit = X[:, :5] @ np.array([1.0, -1.0, 0.5, 0.5, -0.5]) + np.sin(3 * X[:, 5])
    y = (logit + rng.logistic(size=len(X)) > 0).astype(int)
    X[rng.random(X.shape) < 0.05] = np.nan
    return X[:n], y[:n], X[n:], y[n:]


def _model(library, seed):
    if library == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=31, learning_rate=0.1,
                                              early_stopping=False, random_state=seed)
    if library == "lgb":
        import lightgbm

        return lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, learning_rate=0.1,
                                       n_jobs=1, verbose=-1, random_state=seed)
    import xgboost

    return xgboost.XGBClassifier(n_estimators=100, max_depth=5, learning_rate=0.1, n_jobs=1,
                                 tree_method="hist", random_state=seed)


def run_one(library, n, seed):
    """One process: fit, then one pass per method; peak memory of the process."""
    from skinfluence import influence_scores

    X, y, X_val, y_val = _data(n, seed)
    model = _model(library, seed)
    start = time.perf_counter()
    model.fit(X, y)
    fit = time.perf_counter() - start
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    row = {"library": library, "n": n, "seed": seed, "fit_s": fit}
    for method in METHODS if n < LARGE else ("exact_hessian",):
        start = time.perf_counter()
        influence_scores(model, X, y, X_val, y_val, method=method)
        row[f"{method}_s"] = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    row.update(rss_before_mib=before / 1024, rss_peak_mib=peak / 1024,
               data_mib=X.nbytes / 2**20)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--libraries", nargs="+", default=["hgb", "lgb", "xgb"])
    parser.add_argument("--one", nargs=3, metavar=("LIBRARY", "N", "SEED"))
    args = parser.parse_args()
    if args.one:
        library, n, seed = args.one
        print(json.dumps(run_one(library, int(n), int(seed))))
        return
    rows = []
    out = HERE / "RESULTS_trees_scale.jsonl"
    with out.open("w") as sink:
        for n in args.sizes:
            for seed in range(args.seeds):
                for library in args.libraries:  # interleaved: each seed runs every library
                    done = subprocess.run([sys.executable, __file__, "--one", library, str(n),
                                           str(seed)], capture_output=True, text=True,
                                          check=True)
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    rows.append(row)
                    sink.write(json.dumps(row) + "\n")
                    sink.flush()
                    print(row, flush=True)
    _report(rows, args)


def _report(rows, args):
    lines = ["# Boosted trees: one influence pass against one fit", "",
             "Produced by `benchmarks/trees/bench_trees_scale.py` "
             f"(sizes {args.sizes}, {args.seeds} seeds). Machine: 2-core x86-64 CPU, no GPU; "
             "OMP/OpenBLAS/MKL threads 1 and n_jobs=1 in every library. Binary synthetic "
             "table, 20 features, 5% missing; 100 rounds, 31 leaves; validation objective: "
             "mean log-loss of 2,000 rows. Each cell: mean (min-max) over seeds; every "
             "(library, n, seed) in its own process.", "",
             "| library | n | fit s | " + " | ".join(f"{m} s (/fit)" for m in METHODS)
             + " | peak RSS MiB (X itself) |",
             "|---|---|---|" + "---|" * len(METHODS) + "---|"]
    for library in args.libraries:
        for n in args.sizes:
            cell = [r for r in rows if r["library"] == library and r["n"] == n]
            if not cell:
                continue
            fit = np.array([r["fit_s"] for r in cell])
            parts = [f"{fit.mean():.2f} ({fit.min():.2f}-{fit.max():.2f})"]
            for m in METHODS:
                if f"{m}_s" not in cell[0]:
                    parts.append("-")
                    continue
                t = np.array([r[f"{m}_s"] for r in cell])
                ratio = t / fit
                parts.append(f"{t.mean():.2f} ({ratio.mean():.2f}x, {ratio.min():.2f}-"
                             f"{ratio.max():.2f})")
            rss = np.array([r["rss_peak_mib"] for r in cell])
            parts.append(f"{rss.mean():.0f} ({cell[0]['data_mib']:.0f})")
            lines.append(f"| {library} | {n:,} | " + " | ".join(parts) + " |")
    (HERE / "RESULTS_trees_scale.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
