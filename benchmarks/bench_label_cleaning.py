"""Label cleaning with no trusted validation set: skinfluence against confident learning.

For each dataset, noise setting and seed: a stratified 70/30 train/test split
(Adult: its own split), features standardised on the training part, a share of
the training labels corrupted, then, interleaved in one process:

- ``noisy``: ``LogisticRegression(C=1)`` fitted on the noisy labels;
- ``clean``: the same on the true labels (the ceiling);
- ``auto``: ``InfluenceTrimmer(LogisticRegression(), fraction="auto")``, all defaults
  (5-fold cross-fitting, IP, trusted held-out rows);
- ``auto_eh``: the same with ``method="exact_hessian"``;
- ``true_rate``: ``InfluenceTrimmer(..., fraction=<true noise rate>)``;
- ``untrusted``: the same with ``trusted=None`` (scored against every held-out row);
- ``CleanLearning``: cleanlab's ``CleanLearning(LogisticRegression(), cv_n_folds=5)``;
- ``cl_refit``: cleanlab ``find_label_issues`` on 5-fold out-of-fold probabilities,
  then a refit without the flagged rows.

Noise: ``uniform`` flips the given share of rows to a uniformly drawn other
class; ``classcond`` flips them to one fixed other class (class k -> k + 1).
For two classes both are the same, so ``classcond`` runs on the multiclass sets.

Reported per cell (mean +- std over seeds): test accuracy, flag precision and
recall, estimated vs true noise rate, flip-detection ROC AUC of the influence
scores alone (``-scores_``), fit time; and the precision of our ranking at
cleanlab's number of flags (``find_label_issues(n_issues=k)``).

Needs cleanlab (a benchmark-only dependency): ``pip install cleanlab``.

Run:  nice python benchmarks/bench_label_cleaning.py [--seeds 5] [--datasets digits,adult]
"""
import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceTrimmer, find_label_issues
from skinfluence.datasets import load_adult

NOISE = [("uniform", 0.1), ("uniform", 0.2), ("uniform", 0.3), ("classcond", 0.2)]
ROWS = ["noisy", "clean", "auto", "auto_eh", "true_rate", "untrusted", "CleanLearning",
        "cl_refit"]


def load(name, seed):
    if name == "adult":
        d = load_adult()
        return d.X_train, d.X_test, d.y_train, d.y_test
    loader = {"digits": load_digits, "breast_cancer": load_breast_cancer, "wine": load_wine}[name]
    X, y = loader(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)


def corrupt(y, kind, rate, rng):
    """(noisy labels, mask of corrupted rows): exactly round(rate * n) rows changed."""
    classes = np.unique(y)
    idx = np.searchsorted(classes, y)
    flip = np.zeros(len(y), dtype=bool)
    flip[rng.choice(len(y), int(round(rate * len(y))), replace=False)] = True
    shift = rng.randint(1, len(classes), size=len(y)) if kind == "uniform" else 1
    new = np.where(flip, (idx + shift) % len(classes), idx)
    return classes[new], flip


def lr():
    return LogisticRegression(C=1.0, max_iter=2000)


def run_cell(name, kind, rate, seed):
    X_tr, X_te, y_tr, y_te = load(name, seed)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    y_noisy, flipped = corrupt(y_tr, kind, rate, np.random.RandomState(seed))
    out = {}

    def record(row, fit, flags=None, noise=None):
        start = time.perf_counter()
        model, flags, noise = fit()
        out[row] = {"acc": model.score(X_te, y_te), "time": time.perf_counter() - start}
        if flags is not None:
            out[row].update(prec=flipped[flags].mean() if flags.any() else np.nan,
                            rec=flipped[flags].sum() / flipped.sum(), n_flags=int(flags.sum()),
                            noise=noise, mem=getattr(model, "memorised_share_", None))
            if hasattr(model, "scores_"):  # flip detection by the influence scores alone
                out[row]["auc"] = roc_auc_score(flipped, -model.scores_)

    record("noisy", lambda: (lr().fit(X_tr, y_noisy), None, None))
    record("clean", lambda: (lr().fit(X_tr, y_tr), None, None))

    def trimmer(**kw):
        def fit():
            trim = InfluenceTrimmer(lr(), random_state=seed, **kw).fit(X_tr, y_noisy)
            return trim, ~trim.support_, trim.noise_rate_
        return fit

    record("auto", trimmer(fraction="auto"))
    record("auto_eh", trimmer(fraction="auto", method="exact_hessian"))
    record("true_rate", trimmer(fraction=rate))
    record("untrusted", trimmer(fraction=rate, trusted=None))

    from cleanlab.classification import CleanLearning
    from cleanlab.filter import find_label_issues as cl_find

    def clean_learning():
        cl = CleanLearning(lr(), seed=seed, cv_n_folds=5).fit(X_tr, y_noisy)
        flags = cl.label_issues_df["is_label_issue"].to_numpy()
        return cl, flags, flags.mean()

    def cl_refit():
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        P = cross_val_predict(lr(), X_tr, y_noisy, cv=folds, method="predict_proba")
        flags = cl_find(np.searchsorted(np.unique(y_noisy), y_noisy), P)
        return lr().fit(X_tr[~flags], y_noisy[~flags]), flags, flags.mean()

    record("CleanLearning", clean_learning)
    record("cl_refit", cl_refit)
    k = out["CleanLearning"]["n_flags"]
    ours = find_label_issues(lr(), X_tr, y_noisy, n_issues=k, random_state=seed)
    out["auto"]["prec_at_cl"] = flipped[ours].mean() if k else np.nan
    return out


def fmt(values, scale=1.0, digits=2):
    v = np.asarray(values, dtype=float) * scale
    return f"{np.nanmean(v):.{digits}f} +- {np.nanstd(v):.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", default="digits,breast_cancer,wine,adult")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    print("BLAS threads pinned to 1 (threadpoolctl).")
    print("| data | noise | row | test acc % | precision | recall | est. / true noise "
          "| score AUC | fit s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with threadpool_limits(1):
        for name in args.datasets.split(","):
            for kind, rate in NOISE:
                if kind == "classcond" and name in ("breast_cancer", "adult"):
                    continue
                runs = [run_cell(name, kind, rate, seed) for seed in range(args.seeds)]
                for row in ROWS:
                    r = [run[row] for run in runs]
                    cells = [fmt([x["acc"] for x in r], 100)]
                    if "prec" in r[0]:
                        noise = [x["noise"] for x in r]
                        est = "" if noise[0] is None else fmt(noise)
                        cells += [fmt([x["prec"] for x in r]), fmt([x["rec"] for x in r]),
                                  f"{est} / {rate:.2f}"]
                    else:
                        cells += ["", "", ""]
                    cells.append(fmt([x["auc"] for x in r], digits=3) if "auc" in r[0] else "")
                    cells.append(f"{np.median([x['time'] for x in r]):.2f}")
                    print(f"| {name} | {kind} {rate:.0%} | {row} | " + " | ".join(cells) + " |")
                prec_cl = [run["auto"]["prec_at_cl"] for run in runs]
                mem = [run["auto"]["mem"] for run in runs]
                print(f"| {name} | {kind} {rate:.0%} | auto: memorised share of doubted rows "
                      f"| {fmt(mem)} (max {max(mem):.2f}) | | | | | |")
                print(f"| {name} | {kind} {rate:.0%} | auto ranking at cleanlab's count | | "
                      f"{fmt(prec_cl)} | | | | |", flush=True)


if __name__ == "__main__":
    main()
