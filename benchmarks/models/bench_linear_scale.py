"""Scale of the linear engine in one process: the scoring pass against its floor.

At n = 10^6, d = 100 (validation set 5,000 rows), for binary and 10-class
``LogisticRegression`` on float64 and float32 X, interleaved in one process
(BLAS pinned to one thread unless ``--threads``):

- ``predict_proba`` over X (the floor: one read of X, one product);
- the whole ``influence_scores`` call with IP (target <= 1.5x predict_proba);
- the whole call with ExactHessian (10 classes: target <= 8 s);
- peak traced allocations (tracemalloc) of each call against the size of X
  (target <= 0.1x).

Medians and min-max of ``--repeats`` interleaved repeats.

Run: ``.venv/bin/python benchmarks/models/bench_linear_scale.py [--threads 1] [--repeats 5]``
(``--d1000``: ExactHessian at n = 10^5, d = 1,000 instead.)
"""
import argparse
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from skinfluence import influence_scores

import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _measure import best_time, peak_memory  # noqa: E402  (benchmarks/_measure.py)


def make(n, d, n_classes, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, n_classes)) / np.sqrt(d)
    if n_classes == 2:
        y = (X @ W[:, 0] + 0.5 * rng.standard_normal(n) > 0).astype(int)
    else:
        y = np.argmax(X @ W + rng.gumbel(size=(n, n_classes)), axis=1)
    return X, y


def floor_case(n_classes, dtype, n, d, repeats, exact=True):
    X, y = make(n, d, n_classes)
    X_val, y_val = make(5_000, d, n_classes, seed=1)
    model = LogisticRegression(max_iter=300).fit(X[:20_000], y[:20_000])
    X = X.astype(dtype)
    W = np.ascontiguousarray(model.coef_.T, dtype=dtype)
    calls = {
        "predict_proba": lambda: model.predict_proba(X),
        "X @ W": lambda: X @ W,
        "IP": lambda: influence_scores(model, X, y, X_val, y_val, method="ip"),
    }
    if exact:
        calls["ExactHessian"] = lambda: influence_scores(model, X, y, X_val, y_val,
                                                         method="exact_hessian")
    times = {k: [] for k in calls}
    for _ in range(repeats):  # interleaved: each repeat runs every call once
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    peaks = {k: peak_memory(fn) for k, fn in calls.items() if k in ("IP", "ExactHessian")}
    return times, peaks, X.nbytes


def fmt(ts):
    return f"{np.median(ts):.3f} s ({min(ts):.3f}-{max(ts):.3f})"


def floor(args):
    from skinfluence.models._row_chunks import n_workers
    print(f"n = {args.n:,}, d = {args.d}, BLAS threads {args.threads}, Hessian-build "
          f"threads {n_workers()}, "
          f"{args.repeats} interleaved repeats, load average before: {os.getloadavg()[0]:.2f}")
    print("| case | predict_proba | X @ W | IP | IP / predict_proba | IP / (X @ W) | "
          "ExactHessian | peak IP / X | peak Exact / X |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n_classes in (2, 10):
        for dtype in ("float64", "float32"):
            times, peaks, size = floor_case(n_classes, dtype, args.n, args.d, args.repeats,
                                            exact=not args.no_exact)
            ratios = np.array(times["IP"]) / np.array(times["predict_proba"])
            floor = np.array(times["IP"]) / np.array(times["X @ W"])
            exact = fmt(times["ExactHessian"]) if "ExactHessian" in times else "-"
            peak_exact = (f"{peaks['ExactHessian'] / 2**20:.0f} MiB = "
                          f"{peaks['ExactHessian'] / size:.3f}" if "ExactHessian" in peaks
                          else "-")
            print(f"| {n_classes} classes, {dtype} | {fmt(times['predict_proba'])} | "
                  f"{fmt(times['X @ W'])} | {fmt(times['IP'])} | {np.median(ratios):.2f} "
                  f"({ratios.min():.2f}-{ratios.max():.2f}) | {np.median(floor):.2f} | "
                  f"{exact} | "
                  f"{peaks['IP'] / 2**20:.0f} MiB = {peaks['IP'] / size:.3f} | "
                  f"{peak_exact} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def exact_at_d1000(n=100_000, d=1000):
    from skinfluence.models.linear import LinearModelAdapter
    X, y = make(n, d, 2)
    X_val, y_val = make(5_000, d, 2, seed=1)
    model = LogisticRegression(C=1.0, max_iter=300).fit(X, y)
    t_exact = best_time(lambda: influence_scores(model, X, y, X_val, y_val,
                                                 method="exact_hessian"), repeats=2)
    a = LinearModelAdapter(model)
    train = a.training_data(X, y)
    t_h = best_time(lambda: a.hessian(train), repeats=2)
    t_pred = best_time(lambda: model.predict_proba(X))
    peak = peak_memory(lambda: influence_scores(model, X, y, X_val, y_val,
                                                method="exact_hessian"))
    print(f"ExactHessian, n={n:,}, d={d} (P={a.n_params}): {t_exact:.2f} s "
          f"(Hessian build {t_h:.2f} s; predict_proba {t_pred:.3f} s); peak traced "
          f"{peak / 2**20:.0f} MiB, X {X.nbytes / 2**20:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-exact", action="store_true")
    parser.add_argument("--d1000", action="store_true")
    parser.add_argument("--workers", type=int, default=None,
                        help="threads of the Hessian build (default: one per core)")
    args = parser.parse_args()
    if args.workers:
        import skinfluence.models._row_chunks as row_chunks
        row_chunks.n_workers = lambda: args.workers
    with threadpool_limits(args.threads):
        exact_at_d1000() if args.d1000 else floor(args)
