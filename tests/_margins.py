"""Seeds and recorded statistics of the tests that assert on a trained network.

A network's training statistic (an AUC, an agreement rate) moves with the
seed and with the CPU's floating-point kernels: a bar that holds for one
training run can fail on another machine. The tests that assert such a
statistic train with ``TRAIN_SEED`` and pass the value to
``record_statistic`` before asserting; ``benchmarks/quality/bench_test_margins.py``
reruns them over many seeds and thread settings, and the bar beside each
assertion sits below the smallest value measured there.

Environment (read by the measuring script only; the suite runs with the
defaults):

- ``SKINFLUENCE_TEST_SEED``: the training seed (default 0);
- ``SKINFLUENCE_TEST_STATS``: a file to which each recorded statistic is
  appended as one JSON line (default: nothing is written).
"""
import json
import os

TRAIN_SEED = int(os.environ.get("SKINFLUENCE_TEST_SEED", "0"))


def record_statistic(name, value):
    """Append ``{"name": name, "value": value, "seed": TRAIN_SEED}`` to the stats file, if any."""
    path = os.environ.get("SKINFLUENCE_TEST_STATS")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"name": name, "value": float(value), "seed": TRAIN_SEED}) + "\n")
