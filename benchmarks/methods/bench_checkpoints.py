"""Checkpoint IPEnsemble on a network that memorised its flipped labels.

Setup: ``make_memorised_moons`` (300 half-moons points, 30 labels flipped far
from the class boundary, 200 clean validation points), MLP 2-32-32-32-2 as a
skorch ``NeuralNetClassifier`` with skorch's defaults where they exist
(CrossEntropyLoss, Adam at lr 0.01, batch 128), no weight decay, no
validation split, ``--epochs`` epochs, with the ``Snapshots(5)`` callback. A
second net of the same shape with ``Dropout(0.1)`` after each hidden layer
is trained the same way for the activation-dropout members.

Per seed: the share of flipped labels the net fits (memorised), and the
flip-detection AUC (flipped = positive, ranked by -score) of

- IP;
- parameter-noise IPEnsemble (5 members incl. the base): dropout on the
  weights at p = 0.01 and 0.05, gaussian at sigma = 0.01 and 0.05;
- activation-dropout IPEnsemble (5 members) on the dropout net (and IP there);
- the checkpoint ensemble (the 5 snapshots), and with ``lr_weighted=True``.

Cost: time of the checkpoint ensemble / one IP call (``influence_scores``
end to end), and the memory the snapshots hold.

Run::

    nice .venv/bin/python benchmarks/methods/bench_checkpoints.py --epochs 1000
    nice .venv/bin/python benchmarks/methods/bench_checkpoints.py --epochs 1000 --batch-size 64
"""
import argparse
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from skorch import NeuralNetClassifier
from torch import nn

from skinfluence import IPEnsemble, influence_scores
from skinfluence.callbacks import Snapshots
from skinfluence.datasets import make_memorised_moons


def mlp(dropout=0.0):
    layers, d = [], 2
    for _ in range(3):
        layers += [nn.Linear(d, 32), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        d = 32
    return nn.Sequential(*layers, nn.Linear(32, 2))


def fit(seed, X, y, args, dropout=0.0):
    torch.manual_seed(seed)
    net = NeuralNetClassifier(mlp(dropout), criterion=nn.CrossEntropyLoss,
                              optimizer=torch.optim.Adam, lr=args.lr, batch_size=args.batch_size,
                              max_epochs=args.epochs, train_split=None, verbose=0,
                              callbacks=[("snapshots", Snapshots(5))])
    return net.fit(X, y)


METHODS = {
    "IP": "ip",
    "dropout p=0.01": IPEnsemble(perturbation="dropout", dropout=0.01),
    "dropout p=0.05": IPEnsemble(perturbation="dropout", dropout=0.05),
    "gaussian s=0.01": IPEnsemble(perturbation="gaussian", sigma=0.01),
    "gaussian s=0.05": IPEnsemble(perturbation="gaussian", sigma=0.05),
    "checkpoints (5)": IPEnsemble(members="checkpoints"),
    "checkpoints lr-weighted": IPEnsemble(members="checkpoints", lr_weighted=True),
}
DROPOUT_NET = {"IP (dropout net)": "ip",
               "activation dropout (dropout net)": IPEnsemble(perturbation="activation")}


def run_seed(seed, args):
    d = make_memorised_moons(noise=args.noise, random_state=seed)
    X, y = d.X_train.astype("float32"), d.y_train.astype("int64")
    Xv, yv = d.X_test.astype("float32"), d.y_test
    t0 = time.perf_counter()
    net = fit(seed, X, y, args)
    drop_net = fit(seed, X, y, args, dropout=0.1)
    train_s = time.perf_counter() - t0
    row = {"fit": float((net.predict(X) == y)[d.flipped].mean()),
           "fit (dropout net)": float((drop_net.predict(X) == y)[d.flipped].mean())}
    influence_scores(net, X, y, Xv, yv)  # warm-up, so the first timing is not the odd one
    times = {}
    for table, model in ((METHODS, net), (DROPOUT_NET, drop_net)):
        for name, method in table.items():
            t = time.perf_counter()
            s = influence_scores(model, X, y, Xv, yv, method=method, random_state=seed)
            times[name] = time.perf_counter() - t
            row[name] = roc_auc_score(d.flipped, -s)
    cb = Snapshots.find(net)
    cost = {"ckpt/IP time": times["checkpoints (5)"] / times["IP"],
            "snapshot MiB": cb.nbytes_ / 2**20, "epochs": [s.epoch for s in cb.snapshots_],
            "train s": train_s}
    return row, cost


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--noise", type=float, default=0.1, help="make_moons noise")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows, costs = [], []
    for seed in range(args.seeds):
        row, cost = run_seed(seed, args)
        rows.append(row)
        costs.append(cost)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items())
              + f" | ckpt/IP time {cost['ckpt/IP time']:.1f}x, snapshots "
              f"{cost['snapshot MiB'] * 1024:.0f} KiB at epochs {cost['epochs']}, "
              f"train {cost['train s']:.0f} s", flush=True)
    print(f"\n{args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, noise {args.noise}, "
          f"{args.seeds} seeds: mean / worst")
    for key in rows[0]:
        vals = np.array([r[key] for r in rows])
        worst = vals.min()
        print(f"  {key:34s} {vals.mean():.3f} / {worst:.3f}")
    ratio = np.array([c["ckpt/IP time"] for c in costs])
    print(f"  checkpoint ensemble time / IP time: {ratio.mean():.1f}x "
          f"(min {ratio.min():.1f}, max {ratio.max():.1f}); snapshots hold "
          f"{costs[0]['snapshot MiB'] * 1024:.1f} KiB in all (5 copies of the state dict, "
          "float32, on the CPU)")


if __name__ == "__main__":
    main()
