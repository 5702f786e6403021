"""Label cleaning for a skorch CNN on digits images, against confident learning.

Digits as 1 x 8 x 8 images (pixels / 16; the rows are passed flattened and
reshaped in the module's ``forward``), stratified 70/30 split per seed, 20% of
the training labels corrupted: ``uniform`` (to a uniformly drawn other digit)
or ``classcond`` (digit k -> k + 1). The network: conv 3x3 (8 channels), ReLU,
2x2 max-pool, conv 3x3 (16 channels), ReLU, linear to 10 classes;
cross-entropy, Adam (lr 0.01), 30 epochs, batch 64, no internal validation
split. Interleaved in one process, per seed and noise kind:

- ``noisy`` / ``clean``: the net on the noisy / true labels;
- ``auto``: ``InfluenceTrimmer(net, fraction="auto")``, all defaults;
- ``CleanLearning``: cleanlab's ``CleanLearning(net, cv_n_folds=5)``.

Reported: test accuracy, trimmed share, flag precision, recall, estimated noise
rate, memorised share, fit time (mean +- std over seeds). Torch and BLAS
threads pinned to 1. Needs cleanlab (``pip install cleanlab``).

Run:  nice python benchmarks/cleaning/bench_label_cleaning_cnn.py [--seeds 5]
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


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(16 * 4 * 4, 10)

    def forward(self, X):
        return self.head(self.features(X.reshape(-1, 1, 8, 8)).flatten(1))


def make_net(seed):
    torch.manual_seed(seed)
    return NeuralNetClassifier(CNN, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
                               lr=0.01, max_epochs=30, batch_size=64, train_split=None,
                               verbose=0)


def corrupt(y, kind, rate, rng):
    flip = np.zeros(len(y), dtype=bool)
    flip[rng.choice(len(y), int(round(rate * len(y))), replace=False)] = True
    shift = rng.randint(1, 10, size=len(y)) if kind == "uniform" else 1
    return np.where(flip, (y + shift) % 10, y).astype(np.int64), flip


def run_seed(seed, kind):
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    y_noisy, flipped = corrupt(y_tr, kind, 0.2, np.random.RandomState(seed))
    out = {}

    def record(row, fit):
        torch.manual_seed(seed)
        start = time.perf_counter()
        model, flags, noise = fit()
        out[row] = {"acc": model.score(X_te, y_te), "time": time.perf_counter() - start}
        if flags is not None:
            out[row].update(share=flags.mean(), prec=flipped[flags].mean() if flags.any() else 0,
                            rec=flipped[flags].sum() / flipped.sum(), noise=noise)
        if getattr(model, "memorised_share_", None) is not None:
            out[row]["mem"] = model.memorised_share_
            out[row]["check"] = model.refit_check_

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
    print("torch and BLAS threads pinned to 1.")
    print("| noise | row | test acc % | trimmed | precision | recall | est. noise (true 0.20) "
          "| memorised share | fit s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in ("uniform", "classcond"):
        with threadpool_limits(1):
            runs = []
            for seed in range(args.seeds):
                runs.append(run_seed(seed, kind))
                print(f"<!-- {kind} seed {seed}: " + ", ".join(
                    f"{k} {v['acc']:.4f}" for k, v in runs[-1].items())
                    + f"; check {runs[-1]['auto']['check']} -->", flush=True)
        for row in runs[0]:
            r = [run[row] for run in runs]

            def fmt(key, scale=1.0):
                if key not in r[0]:
                    return ""
                v = np.array([x[key] for x in r], dtype=float) * scale
                return f"{v.mean():.2f} +- {v.std():.2f}"

            print(f"| {kind} 20% | {row} | {fmt('acc', 100)} | {fmt('share')} | {fmt('prec')} "
                  f"| {fmt('rec')} | {fmt('noise')} | {fmt('mem')} "
                  f"| {np.median([x['time'] for x in r]):.1f} |", flush=True)


if __name__ == "__main__":
    main()
