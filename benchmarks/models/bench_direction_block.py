"""Scoring many directions at once: one JVP per direction against per-row gradients.

``influence_matrix`` scores the training rows along one direction per test row.
A torch network can do that two ways: a forward-mode product (``jvp``, batched
by ``vmap``) per direction, or the per-row gradients of the training rows
(``vmap`` over ``grad``, once) times the block of directions. The adapter takes
the second when a block has at least ``ROW_GRADIENT_MIN_DIRECTIONS`` columns;
this script measures both on the same fitted networks for blocks of 1 to 300
test rows, to show where the cross-over lies.

Networks (digits / 16 as in ``bench_cnn_flips.py``, 1,000 training rows,
skorch, Adam, 10 epochs): ``cnn`` (the batch-norm CNN of ``bench_cnn_flips.py``,
3,866 parameters) and ``mlp`` (``bench_curvature.py``'s, 8,970) are where the
threshold was chosen; ``tanh_cnn`` (``bench_curvature.py``'s, 11,034) and
``conv1d`` (``bench_nets_peers.py``'s, 1,994) are held out.

Each cell: ``influence_matrix(net, X, y, X_test[:B], y_test[:B], method="ip")``
with the threshold forced to 1 (per-row gradients) or to infinity (JVPs),
the two and a plain forward pass over the 1,000 training rows (eval mode, no
gradients; ten of them per timing) timed alternately ``--repeats`` times; the cell is each path's
median over the forward pass's median. Torch and BLAS threads pinned to 1.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/models/bench_direction_block.py --seeds 5

writes ``RESULTS_direction_block.jsonl`` (one line per net and seed) and
``RESULTS_direction_block.md`` next to this file; ``--report`` rewrites the
Markdown from the JSON lines. The report also scores every candidate threshold
T (per-row gradients from B = T on): for each net, the worst ratio of the
chosen path's cost to the cheaper path's over the blocks B, on the nets the
threshold was chosen on and, separately, on the held-out nets.
"""
import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cnn_flips import CNN, DECAY, flipped_digits, make_net  # noqa: E402
from bench_curvature import MLP, TanhCNN  # noqa: E402
from bench_nets_peers import Conv1dNet  # noqa: E402

import skinfluence.models.torch as torch_adapter  # noqa: E402
from skinfluence import influence_matrix  # noqa: E402

NETS = {"cnn": CNN, "mlp": MLP, "tanh_cnn": TanhCNN, "conv1d": Conv1dNet}
CHOSEN_ON = ("cnn", "mlp")
BLOCKS = (1, 2, 4, 8, 16, 32, 300)
PATHS = {"jvp": 10 ** 9, "row gradients": 1}
HERE = Path(__file__).resolve().parent


def fitted(net_name, seed):
    X_tr, y_noisy, X_va, y_va, _ = flipped_digits(seed)
    torch.manual_seed(seed)
    net = make_net(NETS[net_name]).fit(X_tr, y_noisy)
    return net, X_tr, y_noisy, X_va, y_va


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cells(net, X, y, Xt, yt, repeats):
    """{(path, B): cost in forward passes}."""
    module, rows = net.module_, torch.as_tensor(X)
    module.eval()

    def forward():  # ten, for a steady figure where one is a fraction of a millisecond
        with torch.no_grad():
            for _ in range(10):
                module(rows)

    def scored(path, b):
        def run():
            torch_adapter.ROW_GRADIENT_MIN_DIRECTIONS = PATHS[path]
            influence_matrix(net, X, y, Xt[:b], yt[:b], method="ip", weight_decay=DECAY)
        return run

    jobs = {(path, b): scored(path, b) for b in BLOCKS for path in PATHS}
    forward()
    for job in jobs.values():  # warm-up
        job()
    times = {key: [] for key in jobs}
    forwards = []
    for _ in range(repeats):
        forwards.append(timed(forward))
        for key, job in jobs.items():
            times[key].append(timed(job))
    base = np.median(forwards) / 10
    return {key: np.median(t) / base for key, t in times.items()}


def worst_ratio(cells, threshold):
    """max over B of (the path threshold picks) / (the cheaper path), per-seed means."""
    worst = 1.0
    for b in BLOCKS:
        jvp, rows = (np.mean([c[f"{path}@{b}"] for c in cells]) for path in PATHS)
        worst = max(worst, (rows if b >= threshold else jvp) / min(jvp, rows))
    return worst


def report(results, command, default):
    lines = ["# Scoring a block of directions: JVPs or per-row gradients", "",
             f"Command: `{command}`", "",
             f"Machine: {platform.machine()} CPU, 2 cores, no GPU; torch and BLAS threads 1, "
             f"torch {torch.__version__}. Cost: `influence_matrix(method=\"ip\")` for B test "
             "rows, in forward passes over the 1,000 training rows; mean +- std over seeds "
             f"{', '.join(str(r['seed']) for r in results if r['net'] == results[0]['net'])}"
             " (each the median of the interleaved repeats). Per-row gradients from "
             f"B = {default} on (`ROW_GRADIENT_MIN_DIRECTIONS`). Threshold chosen on "
             f"{' and '.join(CHOSEN_ON)}; {' and '.join(n for n in NETS if n not in CHOSEN_ON)}"
             " held out.", ""]
    by_net = {}
    for r in results:
        by_net.setdefault(r["net"], {"params": r["params"], "cells": []})["cells"].append(
            r["cells"])
    lines += ["| net | parameters | path | " + " | ".join(f"B={b}" for b in BLOCKS) + " |",
              "|" + "---|" * (3 + len(BLOCKS))]
    for net_name, res in by_net.items():
        role = "chosen on" if net_name in CHOSEN_ON else "held out"
        for path in PATHS:
            vals = [np.array([c[f"{path}@{b}"] for c in res["cells"]]) for b in BLOCKS]
            lines.append(f"| {net_name} ({role}) | {res['params']:,} | {path} | "
                         + " | ".join(f"{v.mean():.1f} +- {v.std():.1f}" for v in vals) + " |")
    lines += ["", "Each candidate threshold T: the worst, over B, of the cost of the path it "
              "picks over the cheaper path's (1.00 = always the cheaper one).", "",
              "| T | " + " | ".join(f"{n} ({'chosen on' if n in CHOSEN_ON else 'held out'})"
                                    for n in by_net) + " | worst, chosen on | worst, held out |",
              "|" + "---|" * (3 + len(by_net))]
    summary = {}
    for t in BLOCKS[1:]:
        worst = {n: worst_ratio(res["cells"], t) for n, res in by_net.items()}
        chosen = max((w for n, w in worst.items() if n in CHOSEN_ON), default=float("nan"))
        held = max((w for n, w in worst.items() if n not in CHOSEN_ON), default=float("nan"))
        summary[t] = chosen, held
        mark = " (default)" if t == default else ""
        lines.append(f"| {t}{mark} | " + " | ".join(f"{w:.2f}" for w in worst.values())
                     + f" | {chosen:.2f} | {held:.2f} |")
    best = min(summary, key=lambda t: summary[t][0])
    best_held = min(summary, key=lambda t: summary[t][1])
    lines += ["", f"The threshold with the smallest worst ratio on the nets it was chosen on: "
              f"T = {best} ({summary[best][0]:.2f}). On the held-out nets its worst ratio is "
              f"{summary[best][1]:.2f}; the best there would have been T = {best_held} "
              f"({summary[best_held][1]:.2f})."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nets", nargs="+", default=list(NETS))
    parser.add_argument("--report", action="store_true", help="only rewrite the Markdown")
    args = parser.parse_args()
    default = torch_adapter.ROW_GRADIENT_MIN_DIRECTIONS
    jsonl, md = HERE / "RESULTS_direction_block.jsonl", HERE / "RESULTS_direction_block.md"
    command = ("OMP_NUM_THREADS=1 .venv/bin/python benchmarks/models/bench_direction_block.py "
               f"--seeds {args.seeds} --repeats {args.repeats}")
    if not args.report:
        torch.set_num_threads(1)
        jsonl.write_text("")
        with threadpool_limits(1):
            for net_name in args.nets:
                for seed in range(args.seeds):
                    net, *data = fitted(net_name, seed)
                    cost = cells(net, *data, args.repeats)
                    row = {"net": net_name, "seed": seed,
                           "params": sum(p.numel() for p in net.module_.parameters()),
                           "cells": {f"{p}@{b}": c for (p, b), c in cost.items()}}
                    with jsonl.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(net_name, seed, {k: round(c, 1) for k, c in row["cells"].items()},
                          flush=True)
        torch_adapter.ROW_GRADIENT_MIN_DIRECTIONS = default
    results = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    md.write_text(report(results, command, default))
    print(md.read_text())


if __name__ == "__main__":
    main()
