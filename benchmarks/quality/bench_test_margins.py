"""The bars of the tests that assert a trained network's statistic, measured.

A network's training statistic moves with the seed and with the CPU's
floating-point kernels, so a test may assert it only at a bar below what
many training runs give. This script reruns those tests (the ones that call
``tests._margins.record_statistic``) with training seeds 0..N-1 and with
``OMP_NUM_THREADS`` 1 and 2, each in a fresh pytest process, and reports
per statistic the minimum, mean, standard deviation and maximum over all
runs. A run whose assertion failed still records its statistics (they are
written before the assertions) and is counted as a failure.

Run:  nice python benchmarks/quality/bench_test_margins.py [--seeds 10] [--out FILE.jsonl]
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

TESTS = [
    "tests/models/test_torch.py::test_half_moons_flip_detection",
    "tests/models/test_torch.py::test_exact_hessian_auto_damping_reported_for_nonconvex_net",
    "tests/models/test_torch.py::test_cg_and_lissa_run_on_torch_tensors",
    "tests/models/test_torch.py::test_sampled_hessian_samplers_on_a_net",
    "tests/models/test_torch.py::test_influence_trimmer_around_a_skorch_net_in_a_pipeline",
    "tests/test_unlearning.py::test_params_last_layer_moves_only_the_last_layer",
    "tests/test_unlearning.py::test_skorch_net_copy_with_updated_parameters",
    "tests/test_examples.py::test_example_runs_and_shows_its_headline[plot_skorch_trimming.py]",
]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_once(seed, threads):
    """Run the tests once; (their recorded statistics, the names of the failed tests)."""
    with tempfile.TemporaryDirectory() as tmp:
        stats_file = os.path.join(tmp, "stats.jsonl")
        env = {**os.environ, "SKINFLUENCE_TEST_SEED": str(seed),
               "SKINFLUENCE_TEST_STATS": stats_file, "OMP_NUM_THREADS": str(threads)}
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "-o", "addopts=", *TESTS],
                             cwd=ROOT, env=env, capture_output=True, text=True)
        records = []
        if os.path.exists(stats_file):
            records = [dict(json.loads(line), threads=threads) for line in open(stats_file)]
    failed = [line.split(" ")[1] for line in out.stdout.splitlines()
              if line.startswith("FAILED ")]
    return records, failed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", default=None, help="write every record here (JSON lines)")
    args = parser.parse_args()
    records, failures = [], collections.Counter()
    start = time.perf_counter()
    for seed in range(args.seeds):
        for threads in (1, 2):
            got, failed = run_once(seed, threads)
            records += got
            failures.update(failed)
            print(f"seed {seed}, OMP_NUM_THREADS={threads}: {len(got)} statistics, failed: "
                  f"{failed or 'none'} ({time.perf_counter() - start:.0f} s)", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)
    by_name = collections.defaultdict(list)
    for r in records:
        by_name[r["name"]].append(r["value"])
    print(f"\n{args.seeds} seeds x OMP_NUM_THREADS 1 and 2")
    print(f"{'statistic':52s} {'runs':>4s} {'min':>8s} {'mean':>8s} {'std':>8s} {'max':>8s}")
    for name in sorted(by_name):
        v = np.array(by_name[name])
        print(f"{name:52s} {len(v):4d} {v.min():8.4f} {v.mean():8.4f} {v.std():8.4f} "
              f"{v.max():8.4f}")
    print("\nfailed runs per test:", dict(failures) or "none")


if __name__ == "__main__":
    main()
