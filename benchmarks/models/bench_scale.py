"""Past memory: a training set read from a numpy memmap and from Parquet through Dask.

Binary ``LogisticRegression`` (fitted on the first 100,000 rows), d = 50,
validation set 5,000 rows. For each n (default 10^6 and 10^7):

- memmap: X and y as ``np.memmap`` files, scored in this process (the chunks
  are read from the file as the pass reaches them);
- Parquet: the same rows as a Parquet dataset (one file per 100,000 rows),
  read with ``dask.dataframe.read_parquet`` and scored on a
  ``dask.distributed`` LocalCluster of 1, 2 and 4 single-threaded workers
  (threads of this process, so that tracemalloc sees every allocation).

Reported: wall time and peak traced allocations (tracemalloc: numpy and
Python memory; pages of the memory-mapped file are the page cache's, not the
process's) of IP, ExactHessian and NewtonLOO, medians of ``--repeats`` runs
(the in-process runs after one warm-up call).
BLAS is pinned to one thread.

Run: ``.venv/bin/python benchmarks/models/bench_scale.py [--n 1000000 10000000] [--repeats 3]``
"""
import argparse
import os
import tempfile
import time
import tracemalloc

import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from skinfluence import influence_scores

D = 50
METHODS = ("ip", "exact_hessian", "newton_loo")
BLOCK = 100_000


def write_data(folder, n, seed=0):
    """X, y as memmaps and as a Parquet dataset, written block by block."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    w = rng.standard_normal(D) / np.sqrt(D)
    X = np.lib.format.open_memmap(os.path.join(folder, "X.npy"), "w+", np.float64, (n, D))
    y = np.lib.format.open_memmap(os.path.join(folder, "y.npy"), "w+", np.int64, (n,))
    os.makedirs(os.path.join(folder, "parquet"))
    names = [f"x{j}" for j in range(D)]
    for k, start in enumerate(range(0, n, BLOCK)):
        stop = min(n, start + BLOCK)
        Xb = rng.standard_normal((stop - start, D))
        yb = (Xb @ w + 0.5 * rng.standard_normal(stop - start) > 0).astype(np.int64)
        X[start:stop], y[start:stop] = Xb, yb
        table = pa.table({**{c: Xb[:, j] for j, c in enumerate(names)}, "y": yb})
        pq.write_table(table, os.path.join(folder, "parquet", f"part-{k:04d}.parquet"))
    X.flush()
    y.flush()
    return w


def measure(fn, repeats, warm_up=True):
    if warm_up:  # imports, the file in the page cache
        fn()
    times, peak = [], 0
    for _ in range(repeats):
        tracemalloc.start()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return times, peak


def fmt(times):
    return f"{np.median(times):.2f} s ({min(times):.2f}-{max(times):.2f})"


def run(n, repeats, workers, folder):
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    write_data(folder, n)
    X = np.load(os.path.join(folder, "X.npy"), mmap_mode="r")
    y = np.load(os.path.join(folder, "y.npy"), mmap_mode="r")
    model = LogisticRegression(max_iter=500).fit(X[:100_000], y[:100_000])
    rng = np.random.default_rng(1)
    X_val = rng.standard_normal((5_000, D))
    y_val = model.predict(X_val)
    rows = []
    for method in METHODS:
        times, peak = measure(lambda: influence_scores(model, X, y, X_val, y_val,
                                                       method=method), repeats)
        rows.append((n, "memmap, in process", method, fmt(times), np.median(times), peak))
    X = y = None  # the memmap's pages count in this process's RSS, which the workers watch
    frame = dd.read_parquet(os.path.join(folder, "parquet"))
    features = [c for c in frame.columns if c != "y"]
    for w in workers:
        # workers are threads of this process: their memory limit would watch its RSS
        with LocalCluster(n_workers=w, threads_per_worker=1, processes=False,
                          dashboard_address=None, memory_limit=0) as cluster, Client(cluster):
            for method in METHODS:
                def call():
                    scores = influence_scores(model, frame[features], frame["y"], X_val,
                                              y_val, method=method)
                    return scores.sum().compute()  # every block scored, nothing gathered
                times, peak = measure(call, repeats, warm_up=False)
                rows.append((n, f"Parquet, Dask, {w} worker(s)", method, fmt(times),
                             np.median(times), peak))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    print(f"d = {D}, BLAS threads 1, {args.repeats} repeats, load average before: "
          f"{os.getloadavg()[0]:.2f}")
    rows = []
    for n in args.n:
        with tempfile.TemporaryDirectory() as folder:
            rows += run(n, args.repeats, args.workers, folder)
    print("| n | source | method | wall time | peak traced memory | X size |")
    print("|---|---|---|---|---|---|")
    for n, source, method, t, _, peak in rows:
        print(f"| {n:,} | {source} | {method} | {t} | {peak / 2**20:.0f} MiB | "
              f"{n * D * 8 / 2**20:,.0f} MiB |")
    print("\nWall time against 1 worker (Parquet, Dask):")
    for n in args.n:
        for method in METHODS:
            base = [r[4] for r in rows if r[0] == n and r[2] == method and "1 worker" in r[1]]
            ratios = [f"{r[1].split(', ')[-1]}: {r[4] / base[0]:.2f}" for r in rows
                      if r[0] == n and r[2] == method and "Dask" in r[1]]
            print(f"  n = {n:,}, {method}: " + "; ".join(ratios))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
