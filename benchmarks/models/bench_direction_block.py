"""Scoring many directions at once: one JVP per direction against per-row gradients.

``influence_matrix`` scores the training rows along one direction per test row.
A torch network can do that two ways: a forward-mode product (``jvp``, batched
by ``vmap``) per direction, or the per-row gradients of the training rows
(``vmap`` over ``grad``, once) times the block of directions. A JVP costs a few
forward passes per direction; the per-row gradients cost about n x P work
whatever the block, which is cheap next to the forward pass where each weight
is applied many times (a convolution) and dear where it is applied once (an
MLP). The adapter takes the per-row gradients when a block has B >= 8
directions and B x reuse >= ``ROW_GRADIENT_MIN_WORK``, reuse being the forward
pass's multiply-adds per row per parameter (``TorchModelAdapter.weight_reuse``).
This script measures both paths on the same fitted networks for blocks of 1 to
300 test rows and scores candidate rules.

Networks (digits / 16 as in ``bench_cnn_flips.py``, 1,000 training rows,
skorch, Adam, 10 epochs): ``cnn`` (the batch-norm CNN of ``bench_cnn_flips.py``,
3,866 parameters) and ``mlp`` (``bench_curvature.py``'s, 8,970) are where the
rule was chosen; ``tanh_cnn`` (``bench_curvature.py``'s, 11,034), ``conv1d``
(``bench_nets_peers.py``'s, 1,994) and ``mlp_wide`` (64-512-512-10, tanh,
301,066) are held out.

Each cell: ``influence_matrix(net, X, y, X_test[:B], y_test[:B], method="ip")``
with the path forced (per-row gradients for any B, or JVPs for any B), the two
and a plain forward pass over the 1,000 training rows (eval mode, no gradients;
ten of them per timing) timed alternately ``--repeats`` times; the cell is each
path's median over the forward pass's median. Torch and BLAS threads pinned to 1.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/models/bench_direction_block.py --seeds 5

writes ``RESULTS_direction_block.jsonl`` (one line per net and seed) and
``RESULTS_direction_block.md`` next to this file; ``--report`` rewrites the
Markdown from the JSON lines. The report scores each candidate rule (per-row
gradients when B >= 8 and B x reuse >= K): for each net, the worst ratio, over
the blocks B, of the cost of the path the rule picks to the cheaper path's, on
the nets the rule was chosen on and, separately, on the held-out nets.
"""
import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _measure import interleaved_medians  # noqa: E402  (benchmarks/_measure.py)
from bench_cnn_flips import CNN, DECAY, flipped_digits, make_net  # noqa: E402
from bench_curvature import MLP, TanhCNN  # noqa: E402
from bench_nets_peers import Conv1dNet  # noqa: E402

import skinfluence.models.torch as torch_adapter  # noqa: E402
from skinfluence import influence_matrix  # noqa: E402
from skinfluence.models import make_adapter  # noqa: E402


class WideMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, 512), nn.Tanh(), nn.Linear(512, 512),
                                    nn.Tanh(), nn.Linear(512, 10))

    def forward(self, X):
        return self.layers(X)


NETS = {"cnn": CNN, "mlp": MLP, "tanh_cnn": TanhCNN, "conv1d": Conv1dNet, "mlp_wide": WideMLP}
CHOSEN_ON = ("cnn", "mlp")
BLOCKS = (1, 2, 4, 8, 16, 32, 64, 300)
#: the path forced: (ROW_GRADIENT_MIN_DIRECTIONS, ROW_GRADIENT_MIN_WORK)
PATHS = {"jvp": (10 ** 9, 0), "row gradients": (1, 0)}
CANDIDATES = (0, 8, 16, 32, 64, 128)  # K; 0: from 8 directions whatever the net
HERE = Path(__file__).resolve().parent


def fitted(net_name, seed):
    X_tr, y_noisy, X_va, y_va, _ = flipped_digits(seed)
    torch.manual_seed(seed)
    net = make_net(NETS[net_name]).fit(X_tr, y_noisy)
    return net, X_tr, y_noisy, X_va, y_va


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
            (torch_adapter.ROW_GRADIENT_MIN_DIRECTIONS,
             torch_adapter.ROW_GRADIENT_MIN_WORK) = PATHS[path]
            influence_matrix(net, X, y, Xt[:b], yt[:b], method="ip", weight_decay=DECAY)
        return run

    jobs = {"forward": forward, **{(path, b): scored(path, b) for b in BLOCKS for path in PATHS}}
    medians = interleaved_medians(jobs, repeats)
    base = medians.pop("forward") / 10
    return {key: t / base for key, t in medians.items()}


def reuse_of(net, X):
    adapter = make_adapter(net)
    return adapter.weight_reuse(adapter.check_X(X[:1], "X"))


def worst_ratio(cells, reuse, k):
    """max over B of (the path rule K picks) / (the cheaper path), per-seed means."""
    worst = 1.0
    for b in BLOCKS:
        jvp, rows = (np.mean([c[f"{path}@{b}"] for c in cells]) for path in PATHS)
        picks_rows = b >= 8 and b * reuse >= k
        worst = max(worst, (rows if picks_rows else jvp) / min(jvp, rows))
    return worst


def report(results, command, default):
    lines = ["# Scoring a block of directions: JVPs or per-row gradients", "",
             f"Command: `{command}`", "",
             f"Machine: {platform.machine()} CPU, 2 cores, no GPU; torch and BLAS threads 1, "
             f"torch {torch.__version__}. Cost: `influence_matrix(method=\"ip\")` for B test "
             "rows, in forward passes over the 1,000 training rows; mean +- std over seeds "
             f"{', '.join(str(r['seed']) for r in results if r['net'] == results[0]['net'])}"
             " (each the median of the interleaved repeats). reuse: the forward pass's "
             "multiply-adds per row per parameter. The adapter's rule: per-row gradients when "
             f"B >= 8 and B x reuse >= K = {default}. Rule chosen on "
             f"{' and '.join(CHOSEN_ON)}; the other nets held out.", ""]
    by_net = {}
    for r in results:
        entry = by_net.setdefault(r["net"], {"params": r["params"], "reuse": r["reuse"],
                                             "cells": []})
        entry["cells"].append(r["cells"])
    lines += ["| net | parameters | reuse | path | " + " | ".join(f"B={b}" for b in BLOCKS)
              + " |", "|" + "---|" * (4 + len(BLOCKS))]
    for net_name, res in by_net.items():
        role = "chosen on" if net_name in CHOSEN_ON else "held out"
        for path in PATHS:
            vals = [np.array([c[f"{path}@{b}"] for c in res["cells"]]) for b in BLOCKS]
            lines.append(f"| {net_name} ({role}) | {res['params']:,} | {res['reuse']:.1f} | "
                         f"{path} | " + " | ".join(f"{v.mean():.1f} +- {v.std():.1f}"
                                                   for v in vals) + " |")
    lines += ["", "Each candidate K: the worst, over B, of the cost of the path the rule picks "
              "over the cheaper path's (1.00 = always the cheaper one); K = 0 is 'from 8 "
              "directions, whatever the net'.", "",
              "| K | " + " | ".join(f"{n} ({'chosen on' if n in CHOSEN_ON else 'held out'})"
                                    for n in by_net) + " | worst, chosen on | worst, held out |",
              "|" + "---|" * (3 + len(by_net))]
    summary = {}
    for k in CANDIDATES:
        worst = {n: worst_ratio(res["cells"], res["reuse"], k) for n, res in by_net.items()}
        chosen = max((w for n, w in worst.items() if n in CHOSEN_ON), default=float("nan"))
        held = max((w for n, w in worst.items() if n not in CHOSEN_ON), default=float("nan"))
        summary[k] = chosen, held
        mark = " (default)" if k == default else ""
        lines.append(f"| {k}{mark} | " + " | ".join(f"{w:.2f}" for w in worst.values())
                     + f" | {chosen:.2f} | {held:.2f} |")
    best = min(summary, key=lambda k: summary[k][0])
    best_held = min(summary, key=lambda k: summary[k][1])
    lines += ["", f"The rule with the smallest worst ratio on the nets it was chosen on: "
              f"K = {best} ({summary[best][0]:.2f}). On the held-out nets its worst ratio is "
              f"{summary[best][1]:.2f}; the best there would have been K = {best_held} "
              f"({summary[best_held][1]:.2f})."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nets", nargs="+", default=list(NETS))
    parser.add_argument("--report", action="store_true", help="only rewrite the Markdown")
    args = parser.parse_args()
    default = torch_adapter.ROW_GRADIENT_MIN_WORK
    saved = torch_adapter.ROW_GRADIENT_MIN_DIRECTIONS, default
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
                           "reuse": reuse_of(net, data[0]),
                           "cells": {f"{p}@{b}": c for (p, b), c in cost.items()}}
                    with jsonl.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(net_name, seed, {k: round(c, 1) for k, c in row["cells"].items()},
                          flush=True)
        torch_adapter.ROW_GRADIENT_MIN_DIRECTIONS, torch_adapter.ROW_GRADIENT_MIN_WORK = saved
    results = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    md.write_text(report(results, command, default))
    print(md.read_text())


if __name__ == "__main__":
    main()
