"""Which curvature and damping ExactHessian should use on a network, by LDS and flip AUC.

Candidates (all ``ExactHessian(solver="cg")``, so every net is solved the same way):

- ``hessian (shift)``: the Hessian, ``damping="auto"`` (1.1 x a 20-step Lanczos
  lower estimate of its most negative eigenvalue);
- ``gauss_newton r``: the generalised Gauss-Newton matrix with a damping of
  ``r`` times its largest eigenvalue (the same 20 Lanczos steps), r in
  {1e-3, 1e-2, 1e-1}.

Data: digits (pixels / 16), per seed a stratified split of 1,000 training rows
with 20% of their labels flipped to a uniformly drawn other digit, and 300
clean validation rows. Nets (skorch, Adam lr 0.003, weight decay 1e-3 passed
to every method as ``weight_decay``, 10 epochs, batch 64):

- ``cnn``: conv, batch norm, conv, batch norm, linear (3,866 parameters) --
  the cells the default is chosen on;
- ``mlp``: 64 -> 64 tanh -> 64 tanh -> 10 (8,970 parameters) and
  ``tanh_cnn``: two 3x3 convolutions with tanh, then 32 tanh units and 10
  outputs (11,034 parameters) -- held out: looked at only after the choice.

Each candidate scores the training rows for the mean validation log-loss.
Flip AUC: ROC AUC of ``-score`` against the flipped mask. LDS (aggregate): the
Spearman correlation, over 50 half-size refits of the same skorch net (shared
by all candidates of a seed), between the summed scores of the subset's rows
and minus the refit's mean validation log-loss
(``linear_datamodeling_score(..., aggregate=True)``). Time: the call's seconds.
Torch and BLAS threads pinned to 1.

Run: ``OMP_NUM_THREADS=1 python benchmarks/models/bench_curvature.py [--seeds 5]``
(writes ``RESULTS_curvature.md`` and ``RESULTS_curvature.jsonl`` next to this file).
"""
import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cnn_flips import CNN, DECAY, flipped_digits, make_net  # noqa: E402

import skinfluence.methods._hessian_solve as solve  # noqa: E402
from skinfluence import ExactHessian, influence_scores  # noqa: E402
from skinfluence.metrics import linear_datamodeling_score  # noqa: E402

HERE = Path(__file__).resolve().parent
CHOSEN_ON = ("cnn",)
RELATIVE = (1e-3, 1e-2, 1e-1)
DEFAULT_RELATIVE = solve.GAUSS_NEWTON_RELATIVE_DAMPING


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                                    nn.Linear(64, 10))

    def forward(self, X):
        return self.layers(X)


class TanhCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, 16, 3), nn.Tanh(), nn.Conv2d(16, 16, 3), nn.Tanh(), nn.Flatten(),
            nn.Linear(16 * 4 * 4, 32), nn.Tanh(), nn.Linear(32, 10))

    def forward(self, X):
        return self.layers(X.reshape(-1, 1, 8, 8))


NETS = {"cnn": CNN, "mlp": MLP, "tanh_cnn": TanhCNN}


def candidates():
    yield "hessian (shift)", ExactHessian(solver="cg"), None
    for r in RELATIVE:
        yield f"gauss_newton {r:g}", ExactHessian(solver="cg", curvature="gauss_newton"), r


def run(net_name, seed, n_subsets):
    X_tr, y_noisy, X_va, y_va, flipped = flipped_digits(seed)
    torch.manual_seed(seed)
    net = make_net(NETS[net_name]).fit(X_tr, y_noisy)
    row = {"net": net_name, "seed": seed,
           "params": sum(p.numel() for p in net.module_.parameters())}
    scores = {}
    for name, method, relative in candidates():
        if relative is not None:
            solve.GAUSS_NEWTON_RELATIVE_DAMPING = relative
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = influence_scores(net, X_tr, y_noisy, X_va, y_va, method=method,
                                   weight_decay=DECAY, return_result=True)
        seconds = time.perf_counter() - start
        scores[name] = np.tile(res.scores, (len(y_va), 1))
        row[name] = {"flip_auc": roc_auc_score(flipped, -res.scores), "seconds": seconds,
                     "damping": res.damping, "cg_iterations": res.extras["solver_iterations"],
                     "residual": res.extras["solver_residual"]}
    solve.GAUSS_NEWTON_RELATIVE_DAMPING = DEFAULT_RELATIVE
    torch.manual_seed(seed)
    lds = linear_datamodeling_score(net, X_tr, y_noisy, X_va, y_va, scores,
                                    n_subsets=n_subsets, aggregate=True, random_state=seed)
    for name, value in lds.items():
        row[name]["lds"] = float(value)
    return row


def summary(rows):
    names = [name for name, _, _ in candidates()]
    lines = []
    for net_name in dict.fromkeys(r["net"] for r in rows):
        part = [r for r in rows if r["net"] == net_name]
        role = "chosen on" if net_name in CHOSEN_ON else "held out"
        lines += ["", f"### {net_name} ({part[0]['params']:,} parameters; {role}; "
                  f"{len(part)} seeds)", "",
                  "| candidate | LDS (aggregate) | flip AUC | damping | CG iterations | s |",
                  "|---|---|---|---|---|---|"]
        for name in names:
            cols = {k: np.array([r[name][k] for r in part])
                    for k in ("lds", "flip_auc", "damping", "cg_iterations", "seconds")}
            cell = (lambda a, f: f"{a.mean():{f}} ({a.min():{f}}-{a.max():{f}})")
            lines.append(f"| {name} | {cell(cols['lds'], '.3f')} | "
                         f"{cell(cols['flip_auc'], '.3f')} | {cols['damping'].mean():.3g} | "
                         f"{cols['cg_iterations'].mean():.0f} | {cols['seconds'].mean():.1f} |")
        lines += ["", "Paired by seed, minus `hessian (shift)`: mean (min-max)", "",
                  "| candidate | LDS | flip AUC | CG iterations |", "|---|---|---|---|"]
        for name in names[1:]:
            diff = {k: np.array([r[name][k] - r[names[0]][k] for r in part])
                    for k in ("lds", "flip_auc", "cg_iterations")}
            lines.append("| " + name + " | " + " | ".join(
                f"{d.mean():+.3f} ({d.min():+.3f} to {d.max():+.3f})" if k != "cg_iterations"
                else f"{d.mean():+.0f}" for k, d in diff.items()) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--subsets", type=int, default=50)
    parser.add_argument("--nets", nargs="*", default=list(NETS))
    parser.add_argument("--summary-only", action="store_true",
                        help="rewrite the tables from RESULTS_curvature.jsonl, run nothing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = HERE / "RESULTS_curvature.jsonl"
    rows = []
    if args.summary_only:
        rows = [json.loads(line) for line in out.read_text().splitlines() if line]
        args.seeds = len({r["seed"] for r in rows})
    else:
        out.write_text("")
    with threadpool_limits(1):
        for seed in range(0 if args.summary_only else args.seeds):
            for net_name in args.nets:
                rows.append(run(net_name, seed, args.subsets))
                with out.open("a") as f:
                    f.write(json.dumps(rows[-1]) + "\n")
                print(json.dumps(rows[-1]), flush=True)
    lines = ["# ExactHessian on networks: which curvature and damping", "",
             f"`benchmarks/models/bench_curvature.py --seeds {args.seeds} --subsets "
             f"{args.subsets}`; 2-core x86-64 CPU, no GPU; torch and BLAS threads 1. Mean "
             "(min-max) over seeds. See the script's docstring for the protocol."]
    (HERE / "RESULTS_curvature.md").write_text("\n".join(lines + summary(rows)) + "\n")
    print("\n".join(lines + summary(rows)))


if __name__ == "__main__":
    main()
