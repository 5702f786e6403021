"""Peak memory and time of ``skinfluence score`` on a table with an identifier column.

A text column with a different value in every row (a customer id, free text)
used to be one-hot encoded densely: n rows x n columns. The command line now
leaves such columns out (with a warning) and one-hot encodes the other text
columns sparsely. For each n, a table with five numeric columns, a 3-valued
text column, a binary label and (or not) an ``id`` column is written to CSV
and scored in a fresh process; the peak resident memory of that process
(``getrusage``'s ``ru_maxrss`` of the child) and its wall time are recorded,
``--repeats`` times per cell, interleaved. ``--package DIR`` scores with the
skinfluence found in DIR (an older checkout) instead of this one.

Run:  nice python benchmarks/cli/bench_cli_memory.py [--sizes 2500,5000,20000] [--repeats 5]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CHILD = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
          "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
          "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def make_table(n, with_id, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame["city"] = rng.choice(["north", "south", "east"], n)
    frame["label"] = np.where(X[:, 0] - X[:, 1] + rng.normal(size=n) > 0, "yes", "no")
    if with_id:
        frame.insert(0, "id", [f"customer-{seed}-{i:07d}" for i in range(n)])
    return frame


def measure(path, package, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if os.path.exists(out):
        os.remove(out)
    command = [sys.executable, "-m", "skinfluence", "score", path, "--target", "label", "-o", out]
    start = time.perf_counter()
    # run from the package's folder: `python -m` puts the working folder first on the path
    got = subprocess.run([sys.executable, "-c", _CHILD, *command], env=env, check=True,
                         capture_output=True, text=True, cwd=package)
    return int(got.stdout.strip()) / 1024, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2500,5000,20000,80000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--package", default=ROOT)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for n in sizes:
                for with_id in (False, True):
                    path = os.path.join(tmp, f"t-{n}-{with_id}.csv")
                    make_table(n, with_id, rep).to_csv(path, index=False)
                    mib, sec = measure(path, args.package, os.path.join(tmp, "out.csv"))
                    results.setdefault((n, with_id), []).append((mib, sec))
                    print(f"repeat {rep}, n={n}, id column={with_id}: {mib:.0f} MiB, "
                          f"{sec:.1f} s", flush=True)
    print(f"\npackage: {args.package}; {args.repeats} repeats; OMP_NUM_THREADS=1")
    print(f"{'n':>7s} {'id column':>9s} {'peak MiB (mean +- std)':>24s} {'seconds':>16s}")
    for (n, with_id), rows in sorted(results.items()):
        mib, sec = np.array(rows).T
        print(f"{n:7d} {str(with_id):>9s} {mib.mean():14.0f} +- {mib.std():5.1f} "
              f"{sec.mean():9.1f} +- {sec.std():4.1f}")


if __name__ == "__main__":
    main()
