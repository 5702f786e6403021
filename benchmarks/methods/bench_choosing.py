"""Choosing a method: what each one costs and how faithful it is, on a linear model and a net.

Two cases, the same for every method, methods interleaved in one process:

- **linear**: ``LogisticRegression(C=1)`` on 1,000 digits rows (pixels / 16),
  650 parameters; 100 test rows are the validation set.
- **network**: a skorch MLP 64 -> 32 ReLU -> 10 (2,410 parameters, float32,
  SGD lr 0.05, weight decay 1e-3, 30 epochs, batch 64) on the same rows, with
  its epoch checkpoints (``skinfluence.callbacks.Snapshots``).

A seed draws the 1,000 / 100 split, the net's initialisation, the LDS subsets
and the methods' own randomness. Per method and seed:

- **time**: one ``influence_scores`` call against the mean test loss (wall
  clock, one thread); for the net also in epochs (time / one epoch of its fit);
- **work**: the adapter calls it made: streamed scoring passes over the
  training rows, Hessian-vector products, explicit Hessians built;
- **memory**: linear, the peak of numpy's allocations during the call
  (tracemalloc); network, the largest array the method builds, from the net's
  parameter count and layer widths (torch's allocations are not traced);
- **LDS**: ``influence_matrix`` for the 100 test rows, scored by
  ``skinfluence.metrics.linear_datamodeling_score`` (50 halves, one refit each,
  the same refits for every method);
- **LOO** (linear only): Pearson correlation between each of 100 random rows'
  score and the change of the mean test loss when the model is refitted
  without that row (the score predicts the loss rises when a beneficial row
  goes).

Run (writes ``RESULTS_choosing.md`` and the per-seed rows, ``RESULTS_choosing.jsonl``, beside
this file)::

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/methods/bench_choosing.py --seeds 0 1 2 3 4
"""
import argparse
import contextlib
import json
import os
import time
import tracemalloc

import numpy as np
import torch
from scipy.stats import pearsonr
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from threadpoolctl import threadpool_limits
from torch import nn

from skinfluence import IPEnsemble, influence_matrix, influence_scores
from skinfluence.callbacks import Snapshots
from skinfluence.metrics import linear_datamodeling_score
from skinfluence.models.base import ModelAdapter

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCHS = 30
METHODS = {
    "ip": "ip",
    "ip_ensemble": "ip_ensemble",
    "ip_ensemble (checkpoints)": "checkpoints",
    "exact_hessian": "exact_hessian",
    "sampled_hessian": "sampled_hessian",
    "newton_loo": "newton_loo",
    "kfac": "kfac",
}


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def make_net(callbacks=()):
    from skorch import NeuralNetClassifier

    return NeuralNetClassifier(
        MLP, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD, lr=0.05,
        optimizer__weight_decay=1e-3, max_epochs=EPOCHS, batch_size=64, train_split=None,
        iterator_train__shuffle=True, callbacks=list(callbacks), verbose=0)


def method_object(name):
    if name == "checkpoints":
        return IPEnsemble(members="checkpoints", lr_weighted=True)
    return name


def split(seed):
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    X = X / 16.0
    return X[order[:1000]], y[order[:1000]], X[order[1000:1100]], y[order[1000:1100]]


@contextlib.contextmanager
def counted():
    """Count the adapter calls of every ModelAdapter subclass: passes, HVPs, Hessians.

    Each class gets a wrapper around the function it resolves (its own or a
    mixin's), read before any wrapper is set, so no call is counted twice.
    """
    counts = {"score_pass": 0, "hvp": 0, "hessian": 0}
    classes, todo = set(), [ModelAdapter]
    while todo:
        cls = todo.pop()
        classes.add(cls)
        todo.extend(cls.__subclasses__())
    originals = [(cls, name, cls.__dict__.get(name), getattr(cls, name))
                 for cls in classes for name in counts if callable(getattr(cls, name, None))]
    for cls, name, _, function in originals:
        def wrapper(self, *a, _function=function, _name=name, **k):
            counts[_name] += 1
            return _function(self, *a, **k)
        setattr(cls, name, wrapper)
    try:
        yield counts
    finally:
        for cls, name, own, _ in originals:
            if own is None:
                delattr(cls, name)
            else:
                setattr(cls, name, own)


def measured(fn):
    """(result, seconds, peak traced bytes, adapter-call counts) of one call.

    The peak is tracemalloc's: every numpy allocation (the linear adapter's
    Hessians, chunks and factorisations), not torch's own tensors.
    """
    tracemalloc.start()
    try:
        with counted() as counts:
            start = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - start
        return result, seconds, tracemalloc.get_traced_memory()[1], dict(counts)
    finally:
        tracemalloc.stop()


def largest_array_mib(net, name):
    """The largest array a method builds for this net, from its parameter count and layers."""
    layers = [m for m in net.module_.modules() if isinstance(m, nn.Linear)]
    n_params = sum(p.numel() for p in net.module_.parameters())
    if name in ("exact_hessian", "sampled_hessian"):
        return n_params ** 2 * 8 / 2**20  # the explicit (P, P) Hessian, float64
    if name == "kfac":
        return max(max((m.in_features + 1) ** 2, m.out_features ** 2) for m in layers) * 8 / 2**20
    return 5 * n_params * 8 / 2**20  # at most a few parameter vectors (members, directions)


def loo_changes(model, X, y, Xt, yt, rows):
    """Change of the mean test log-loss when each of ``rows`` is left out and the model refit."""
    base = log_loss(yt, model.predict_proba(Xt), labels=model.classes_)
    change = []
    for i in rows:
        keep = np.arange(len(y)) != i
        refit = clone(model).fit(X[keep], y[keep])
        change.append(log_loss(yt, refit.predict_proba(Xt), labels=model.classes_) - base)
    return np.array(change)


def run_case(case, seed, n_subsets):
    X, y, Xt, yt = split(seed)
    torch.manual_seed(seed)
    if case == "linear":
        model = LogisticRegression(C=1.0, tol=1e-10, max_iter=5000)
        start = time.perf_counter()
        model.fit(X, y)
        fit_seconds = time.perf_counter() - start
        epoch = None
    else:
        X, Xt = X.astype(np.float32), Xt.astype(np.float32)
        model = make_net([Snapshots()])
        start = time.perf_counter()
        model.fit(X, y)
        fit_seconds = time.perf_counter() - start
        epoch = fit_seconds / EPOCHS
    if case == "linear":
        loo_rows = np.random.default_rng(seed).choice(len(y), 100, replace=False)
        loo = loo_changes(model, X, y, Xt, yt, loo_rows)
    rows, matrices = [], {}
    for name, spec in METHODS.items():
        method = method_object(spec)
        if case == "linear" and spec == "checkpoints":
            continue
        try:  # warm-up, untimed: torch's first vmap / jvp calls cost more than later ones
            influence_scores(model, X[:200], y[:200], Xt[:5], yt[:5], method=method_object(spec),
                             random_state=seed)
        except (TypeError, ValueError):
            pass
        try:
            scores, seconds, peak, counts = measured(
                lambda: influence_scores(model, X, y, Xt, yt, method=method, random_state=seed))
        except (TypeError, ValueError) as exc:
            rows.append(dict(case=case, seed=seed, method=name, refused=str(exc).split(".")[0]))
            print(json.dumps(rows[-1]), flush=True)
            continue
        matrices[name] = influence_matrix(model, X, y, Xt, yt, method=method,
                                          random_state=seed)
        row = dict(case=case, seed=seed, method=name, seconds=seconds, peak_mib=peak / 2**20,
                   fit_seconds=fit_seconds, **counts)
        if epoch is not None:
            row["epochs"] = seconds / epoch
            row["peak_mib"] = largest_array_mib(model, spec)
        if case == "linear":
            row["loo"] = float(pearsonr(np.asarray(scores)[loo_rows], loo)[0])
        rows.append(row)
        print(json.dumps(row), flush=True)
    refit_model = model if case == "linear" else make_net()
    torch.manual_seed(1000 + seed)
    lds = linear_datamodeling_score(refit_model, X, y, Xt, yt, matrices, n_subsets=n_subsets,
                                    random_state=seed)
    for row in rows:
        if row["method"] in lds:
            row["lds"] = float(lds[row["method"]])
    return rows


def _cell(values, fmt):
    values = np.asarray(values, dtype=float)
    return f"{values.mean():{fmt}} ({values.min():{fmt}}-{values.max():{fmt}})"


def table(rows):
    out = ["| case | method | time (s) | epochs | scoring passes | HVPs | Hessians built "
           "| memory (MiB) | LOO r | LDS |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for case in ("linear", "network"):
        for name in METHODS:
            sel = [r for r in rows if r["case"] == case and r["method"] == name]
            if not sel:
                continue
            if "refused" in sel[0]:
                out.append(f"| {case} | {name} | refused: {sel[0]['refused']} "
                           "| | | | | | | |")
                continue
            epochs = _cell([r["epochs"] for r in sel], ".1f") if case == "network" else ""
            loo = _cell([r["loo"] for r in sel], ".3f") if case == "linear" else ""
            out.append(
                f"| {case} | {name} | {_cell([r['seconds'] for r in sel], '.3f')} | {epochs} "
                f"| {_cell([r['score_pass'] for r in sel], '.0f')} "
                f"| {_cell([r['hvp'] for r in sel], '.0f')} "
                f"| {_cell([r['hessian'] for r in sel], '.0f')} "
                f"| {_cell([r['peak_mib'] for r in sel], '.1f')} | {loo} "
                f"| {_cell([r['lds'] for r in sel], '.3f')} |")
    fits = {case: [r["fit_seconds"] for r in rows if r["case"] == case and "fit_seconds" in r]
            for case in ("linear", "network")}
    out += ["", "One fit of the model: linear " + _cell(fits["linear"], ".3f")
            + " s; network " + _cell(fits["network"], ".3f") + f" s ({EPOCHS} epochs)."]
    return "\n".join(out)


def write_report(rows, path, seeds):
    import platform

    import sklearn

    header = [
        "# Choosing a method: cost and faithfulness on a linear model and an MLP", "",
        f"Machine: {platform.machine()} CPU, {os.cpu_count()} cores, no GPU; one BLAS and one "
        f"torch thread. Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, torch {torch.__version__}.",
        "Command: `OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/methods/bench_choosing.py "
        f"--seeds {' '.join(map(str, seeds))}` (per-seed rows: `RESULTS_choosing.jsonl`).", "",
        "Mean (min-max) over the seeds. Time: one `influence_scores` call on the mean test "
        "loss, after an untimed warm-up; epochs: that time over one epoch of the net's own "
        "fit. Scoring passes / HVPs / Hessians: the adapter's `score_pass`, `hvp` and "
        "`hessian` calls (an ensemble scores all its members in one pass; K-FAC's factor "
        "passes run inside the method). Memory: linear, numpy's traced peak; network, the "
        "largest array the method builds. LOO r: Pearson r of the scores with the refitted "
        "change of the test loss for 100 rows. LDS: 50 halves, one refit each, the same "
        "refits for every method.", "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(header) + "\n" + table(rows) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--subsets", type=int, default=50)
    parser.add_argument("--out", default=os.path.join(HERE, "RESULTS_choosing.jsonl"))
    parser.add_argument("--report", action="store_true",
                        help="only write RESULTS_choosing.md from the rows in --out")
    args = parser.parse_args()
    if args.report:
        with open(args.out) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        seeds = sorted({r["seed"] for r in rows})
        write_report(rows, os.path.join(HERE, "RESULTS_choosing.md"), seeds)
        return
    torch.set_num_threads(1)
    rows = []
    with threadpool_limits(1):
        for seed in args.seeds:
            for case in ("linear", "network"):
                rows += run_case(case, seed, args.subsets)
                with open(args.out, "w") as f:
                    f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    write_report(rows, os.path.join(HERE, "RESULTS_choosing.md"), args.seeds)
    print(table(rows))


if __name__ == "__main__":
    main()
