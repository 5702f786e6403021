"""Flipped labels in a CNN's training set: which method finds them, at what cost in epochs.

Digits as 1 x 8 x 8 images (pixels / 16), a stratified split per seed: 1,000
training rows with 20% of their labels flipped to a uniformly drawn other
digit, 300 clean validation rows. The network (skorch): conv 3x3 (8 channels),
batch norm, ReLU, 2x2 max-pool, conv 3x3 (16), batch norm, ReLU, linear to 10
classes (3,866 parameters); cross-entropy, Adam (lr 0.003, weight decay
1e-3, given to every method as ``weight_decay``), 10 epochs, batch 64: it fits
about 8% of the flipped labels. Each method scores the training rows for the
validation loss; the flip AUC is the ROC AUC of ``-score`` against the flipped
mask (the most harmful rows first). For reference, the rows' own training
loss (no influence) is reported too.

Cost in epochs: the method's wall time divided by the mean time of one
training epoch of the same net in the same process (the fit's time over its
10 epochs). Methods interleaved per seed; torch and BLAS threads pinned to 1.

Run:  OMP_NUM_THREADS=1 python benchmarks/models/bench_cnn_flips.py [--seeds 5]
Writes ``RESULTS_cnn_flips.md`` next to this file.
"""
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from threadpoolctl import threadpool_limits
from torch import nn

from skinfluence import KFAC, ExactHessian, IP, IPEnsemble, SampledHessian, influence_scores

EPOCHS = 10
DECAY = 1e-3


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.head = nn.Linear(16 * 4 * 4, 10)

    def forward(self, X):
        return self.head(self.features(X.reshape(-1, 1, 8, 8)).flatten(1))


METHODS = {
    "ip": IP(),
    "kfac": KFAC(),
    "kfac (eigen_correction)": KFAC(eigen_correction=True),
    "ip_ensemble": IPEnsemble(),
    "sampled_hessian": SampledHessian(),
    "exact_hessian (CG)": ExactHessian(solver="cg"),
}


def flipped_digits(seed):
    """Digits / 16 (float32, flat): 1,000 training rows, 200 of their labels flipped to a
    uniformly drawn other digit, and 300 clean validation rows, stratified per seed.

    Returns X_tr, y_noisy, X_va, y_va and the flipped mask."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, train_size=1000, test_size=300,
                                              stratify=y, random_state=seed)
    rng = np.random.RandomState(seed)
    flipped = np.zeros(len(y_tr), dtype=bool)
    flipped[rng.choice(len(y_tr), 200, replace=False)] = True
    y_noisy = np.where(flipped, (y_tr + rng.randint(1, 10, len(y_tr))) % 10, y_tr)
    return X_tr, y_noisy, X_va, y_va, flipped


def make_net(module):
    """The skorch classifier the network benchmarks train: cross-entropy, Adam (lr 0.003,
    weight decay ``DECAY``), ``EPOCHS`` epochs of batch 64, no validation split."""
    return NeuralNetClassifier(module, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
                               lr=0.003, optimizer__weight_decay=DECAY, max_epochs=EPOCHS,
                               batch_size=64, train_split=None, verbose=0)


def run_seed(seed, skip):
    X_tr, y_noisy, X_va, y_va, flipped = flipped_digits(seed)
    torch.manual_seed(seed)
    net = make_net(CNN)
    start = time.perf_counter()
    net.fit(X_tr, y_noisy)
    epoch = (time.perf_counter() - start) / EPOCHS
    row = {"epoch_s": epoch, "params": sum(p.numel() for p in net.module_.parameters()),
           "memorised": float((net.predict(X_tr[flipped]) == y_noisy[flipped]).mean())}
    for name, method in METHODS.items():
        if name in skip:
            continue
        start = time.perf_counter()
        with warnings.catch_warnings():  # KFAC names the batch norms it does not factor
            warnings.simplefilter("ignore", UserWarning)
            scores = influence_scores(net, X_tr, y_noisy, X_va, y_va, method=method,
                                      random_state=seed, weight_decay=DECAY)
        row[name] = (roc_auc_score(flipped, -scores), (time.perf_counter() - start) / epoch)
    start = time.perf_counter()
    proba = net.predict_proba(X_tr)[np.arange(len(y_noisy)), y_noisy]
    row["own training loss"] = (roc_auc_score(flipped, -np.log(proba)),
                                (time.perf_counter() - start) / epoch)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[])
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with threadpool_limits(1):
        for seed in range(args.seeds):
            rows.append(run_seed(seed, set(args.skip)))
            print(seed, rows[-1], flush=True)
    names = [k for k in rows[0] if k not in ("epoch_s", "params", "memorised")]
    lines = ["# A CNN's flipped labels: flip AUC and cost in training epochs", "",
             f"`benchmarks/models/bench_cnn_flips.py --seeds {args.seeds}`; 2-core x86-64 CPU, "
             "no GPU; torch and BLAS threads 1. Digits 1x8x8, 1,000 training rows with 20% "
             f"uniform flips, 300 clean validation rows; {rows[0]['params']:,}-parameter CNN "
             "(conv, batch norm, conv, batch norm, linear), 10 epochs of Adam; it fits "
             f"{np.mean([r['memorised'] for r in rows]):.1%} of the flipped labels. One epoch: "
             f"{np.mean([r['epoch_s'] for r in rows]):.3f} s on average. Mean (min-max) over "
             "seeds.", "", "| method | flip AUC | cost in epochs |", "|---|---|---|"]
    for name in names:
        auc = np.array([r[name][0] for r in rows])
        cost = np.array([r[name][1] for r in rows])
        lines.append(f"| {name} | {auc.mean():.3f} ({auc.min():.3f}-{auc.max():.3f}) | "
                     f"{cost.mean():.1f} ({cost.min():.1f}-{cost.max():.1f}) |")
    (Path(__file__).resolve().parent / "RESULTS_cnn_flips.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
