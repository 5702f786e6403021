"""Label cleaning for a skorch MLP with no trusted validation set, against confident learning.

Digits (8x8, pixels / 16), stratified 70/30 split per seed, 20% of the training
labels flipped to a uniformly drawn other digit. The network: 64-128-10 MLP,
ReLU, cross-entropy, Adam (lr 0.01), 40 epochs, batch 64, no internal
validation split. Interleaved in one process, per seed:

- ``noisy`` / ``clean``: the net on the noisy / true labels;
- ``auto``: ``InfluenceTrimmer(net, fraction="auto")``, all defaults (5-fold
  cross-fitting, IP against the trusted held-out rows);
- ``CleanLearning``: cleanlab's ``CleanLearning(net, cv_n_folds=5)``.

Reported: test accuracy, flag precision and recall, estimated noise rate and
fit time (mean +- std over seeds). Needs cleanlab (``pip install cleanlab``).

Run:  nice python benchmarks/bench_label_cleaning_mlp.py [--seeds 5]
"""
import argparse
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from skinfluence import InfluenceTrimmer
from skinfluence.datasets import flip_labels


class MLP(nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, X):
        return self.layers(X)


def make_net(seed):
    torch.manual_seed(seed)
    return NeuralNetClassifier(MLP, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
                               lr=0.01, max_epochs=40, batch_size=64, train_split=None,
                               verbose=0)


def run_seed(seed):
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    y_noisy, flipped = flip_labels(y_tr, 0.2, random_state=seed)
    y_noisy = y_noisy.astype(np.int64)
    out = {}

    def record(row, fit):
        torch.manual_seed(seed)
        start = time.perf_counter()
        model, flags, noise = fit()
        out[row] = {"acc": model.score(X_te, y_te), "time": time.perf_counter() - start}
        if flags is not None:
            out[row].update(prec=flipped[flags].mean(), rec=flipped[flags].sum() / flipped.sum(),
                            noise=noise)
        if getattr(model, "memorised_share_", None) is not None:
            out[row]["mem"] = model.memorised_share_

    record("noisy", lambda: (make_net(seed).fit(X_tr, y_noisy), None, None))
    record("clean", lambda: (make_net(seed).fit(X_tr, y_tr.astype(np.int64)), None, None))

    def auto():
        trim = InfluenceTrimmer(make_net(seed), fraction="auto", random_state=seed)
        trim.fit(X_tr, y_noisy)
        return trim, ~trim.support_, trim.noise_rate_

    def clean_learning():
        from cleanlab.classification import CleanLearning

        cl = CleanLearning(make_net(seed), seed=seed, cv_n_folds=5).fit(X_tr, y_noisy)
        flags = cl.label_issues_df["is_label_issue"].to_numpy()
        return cl, flags, flags.mean()

    record("auto", auto)
    record("CleanLearning", clean_learning)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        runs = [run_seed(seed) for seed in range(args.seeds)]
    print("torch and BLAS threads pinned to 1.")
    print("| row | test acc % | precision | recall | est. noise (true 0.20) | memorised share "
          "| fit s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in runs[0]:
        r = [run[row] for run in runs]

        def fmt(key, scale=1.0):
            if key not in r[0]:
                return ""
            v = np.array([x[key] for x in r], dtype=float) * scale
            return f"{v.mean():.2f} +- {v.std():.2f}"

        print(f"| {row} | {fmt('acc', 100)} | {fmt('prec')} | {fmt('rec')} | {fmt('noise')} "
              f"| {fmt('mem')} | {np.median([x['time'] for x in r]):.1f} |")


if __name__ == "__main__":
    main()
