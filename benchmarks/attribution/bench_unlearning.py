"""Class removal, as the sampled-Hessian paper (Koh et al.) evaluates its samplers.

Every class of digits is removed in turn from (a) a multinomial
LogisticRegression (StandardScaler, C=1) and (b) a skorch MLP 64-32-10 (tanh,
Adam, weight decay 1e-3; the unlearning step moves its last layer), by:

- retraining (the reference): LogisticRegression refitted with zero weight on
  the class; the MLP trained again from the same seed on the kept rows;
- ``unlearn(method="newton")`` with 1 and 3 steps;
- the paper's influence step with the full Hessian and with SampledHessian
  (random / feature / logit at 5%, 10%, 20% of the training rows).

Seeds vary the sampler (10 seeds) and, for the MLP, the training too (5 seeds:
training and retraining the MLP 10 times per seed would not fit the run-time
budget on this machine). On the test set: accuracy and log-loss on the removed
class (self) and on the others (exclusive), F1 = 2 (1 - a_self) a_excl /
((1 - a_self) + a_excl), agreement with retraining's predictions on the other
classes' rows, wall time and peak traced memory (tracemalloc: numpy and Python
allocations; torch's own tensors are not traced) of each call.

Run: ``nice .venv/bin/python benchmarks/attribution/bench_unlearning.py`` (prints the
table of benchmarks/attribution/RESULTS_unlearning.md; ``--target`` the per-class table of
the linear model; ``--quick`` for a smoke run). One BLAS / torch thread.
"""
import sys
import time
import tracemalloc
from collections import defaultdict

import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skinfluence import SampledHessian, unlearn

FRACTIONS = (0.05, 0.1, 0.2)
SAMPLERS = ("random", "feature", "logit")


def class_removal_metrics(proba, y_test, removed, reference_pred):
    """The paper's class-removal protocol on one model's test probabilities."""
    pred = proba.argmax(1)
    own = y_test == removed
    loss = -np.log(np.clip(proba[np.arange(len(y_test)), y_test], 1e-12, None))
    a_self, a_excl = np.mean(pred[own] == removed), np.mean(pred[~own] == y_test[~own])
    f1 = 2 * (1 - a_self) * a_excl / max((1 - a_self) + a_excl, 1e-12)
    return {"F1": f1, "acc_self": a_self, "acc_excl": a_excl, "loss_self": loss[own].mean(),
            "loss_excl": loss[~own].mean(),
            "agree": np.mean(pred[~own] == reference_pred[~own])}


def measured(fn):
    """(result, seconds, peak traced MiB) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        out = fn()
        return out, time.perf_counter() - start, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def data():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), y_tr, scaler.transform(X_te), y_te


def make_mlp(seed):
    from skorch import NeuralNetClassifier

    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(),
                                 torch.nn.Linear(32, 10))
    return NeuralNetClassifier(module, criterion=torch.nn.CrossEntropyLoss,
                               optimizer=torch.optim.Adam, optimizer__weight_decay=1e-3,
                               lr=1e-2, max_epochs=40, batch_size=128, train_split=None,
                               verbose=0, classes=list(range(10)))


def methods(seed):
    """(name, unlearn keyword arguments), the stochastic ones seeded; order rotated by seed."""
    out = [(f"sampled {s} {f:.0%}",
            dict(method=SampledHessian(sampler=s, fraction=f), random_state=seed))
           for f in FRACTIONS for s in SAMPLERS]
    k = seed % len(SAMPLERS)  # interleave: no sampler always runs first
    return out[k:] + out[:k]


def run(family, X, y, X_te, y_te, seeds, rows):
    for seed in seeds:
        if family == "linear":
            model = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
            opts = {}
        else:
            Xf, X_tef = X.astype(np.float32), X_te.astype(np.float32)
            model = make_mlp(seed).fit(Xf, y)
            opts = {"params": "last_layer"}
        Xu, Xt = (X, X_te) if family == "linear" else (Xf, X_tef)
        for cls in range(10):
            removed = y == cls
            if family == "linear":
                ref, t, mem = measured(lambda: clone(model).fit(
                    X, y, sample_weight=(~removed).astype(float)))
            else:
                ref, t, mem = measured(lambda: make_mlp(seed).fit(Xf[~removed], y[~removed]))
            ref_pred = ref.predict(Xt)
            todo = [("retraining", None)]
            if seed == seeds[0] or family != "linear":  # deterministic given the model
                todo += [("newton 1 step", dict(n_steps=1)), ("newton 3 steps", dict(n_steps=3)),
                         ("influence, full H", dict(method="influence")),
                         ("original model", "original")]
            todo += methods(seed)
            for name, kw in todo:
                if kw is None:
                    new = ref
                elif kw == "original":
                    new, t, mem = model, 0.0, 0.0
                else:
                    new, t, mem = measured(lambda: unlearn(model, Xu, y, removed, **kw, **opts))
                m = class_removal_metrics(new.predict_proba(Xt), y_te, cls, ref_pred)
                m.update(time=t, memory=mem)
                rows[(family, name)].append((seed, cls, m))
        print(f"{family} seed {seed} done", flush=True)


def summarise(rows):
    keys = ("F1", "acc_self", "acc_excl", "loss_self", "loss_excl", "agree", "time", "memory")
    lines = ["| model | method | F1 | seed spread of F1 | acc self | acc excl | loss self | "
             "loss excl | agreement with retraining | time (s) | peak memory (MiB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (family, name), runs in rows.items():
        vals = {k: np.array([m[k] for _, _, m in runs]) for k in keys}
        # spread over seeds: std of each class's F1 across seeds, averaged over classes
        by_class = defaultdict(list)
        for _, cls, m in runs:
            by_class[cls].append(m["F1"])
        spread = np.mean([np.std(v) for v in by_class.values()])
        cells = [f"{vals[k].mean():.3f} ± {vals[k].std():.3f}" for k in keys[:1]]
        cells.append(f"{spread:.3f}")
        cells += [f"{vals[k].mean():.3f} ± {vals[k].std():.3f}" for k in keys[1:6]]
        cells.append(f"{vals['time'].mean():.3f} ± {vals['time'].std():.3f}")
        cells.append(f"{vals['memory'].mean():.2f} ± {vals['memory'].std():.2f}")
        lines.append(f"| {family} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target():
    """Per class, linear model: agreement with retraining and self-accuracy by method."""
    X, y, X_te, y_te = data()
    model = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
    print("| removed class | method | agreement with retraining (other classes) | "
          "self-accuracy |")
    print("|---|---|---|---|")
    for cls in range(10):
        removed, own = y == cls, y_te == cls
        ref = clone(model).fit(X, y, sample_weight=(~removed).astype(float)).predict(X_te)
        for name, kw in (("newton 1 step", {}), ("newton 3 steps", {"n_steps": 3}),
                         ("influence, full H", {"method": "influence"})):
            pred = unlearn(model, X, y, removed, **kw).predict(X_te)
            print(f"| {cls} | {name} | {np.mean(pred[~own] == ref[~own]):.3f} | "
                  f"{np.mean(pred[own] == cls):.2f} |")


def main():
    if "--target" in sys.argv:
        with threadpool_limits(1):
            return target()
    quick = "--quick" in sys.argv
    torch.set_num_threads(1)
    X, y, X_te, y_te = data()
    rows = defaultdict(list)
    start = time.perf_counter()
    with threadpool_limits(1):
        run("linear", X, y, X_te, y_te, list(range(2 if quick else 10)), rows)
        run("mlp", X, y, X_te, y_te, list(range(1 if quick else 5)), rows)
    table = summarise(rows)
    print(table)
    print(f"total {time.perf_counter() - start:.0f} s")
    return rows


if __name__ == "__main__":
    main()
