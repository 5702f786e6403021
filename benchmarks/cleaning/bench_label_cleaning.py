"""Label cleaning with no trusted validation set: skinfluence against confident learning.

For each data set, noise kind and seed: a stratified 70/30 train/test split
(Adult: its own split, 8,000 training rows drawn per seed), features
standardised on the training part, the training labels corrupted, then,
interleaved in one process, every model a ``LogisticRegression(C=1)``:

- ``noisy`` / ``clean``: the model on the noisy / true training labels;
- ``auto``: ``InfluenceTrimmer(LogisticRegression(), fraction="auto")``, all defaults;
- ``candidates``: the same trimmer forced to act on its candidates whatever its
  refit check says (an analysis row: how much the check's decision is worth);
- ``CleanLearning``: cleanlab's ``CleanLearning(LogisticRegression(), cv_n_folds=5)``.

Noise kinds (``rate`` = share of training rows corrupted unless said otherwise):

- ``none``: the labels as given;
- ``uniform``: to a uniformly drawn other class;
- ``classcond``: to one fixed other class (k -> k + 1), multiclass sets only;
- ``instance``: rows drawn with probability growing as the margin of a model
  fitted on the true labels shrinks (weight exp(-margin / 0.25)), each moved to
  that model's most probable other class (boundary confusions);
- ``onesided``: ``rate`` of the rows of every class but the first recorded as
  the first class (noise that can only produce one class).

Reported per cell (mean +- std over seeds): test accuracy on the true labels,
trimmed share, flag precision (and per given class), recall, estimated vs true
noise rate, fit time. Results go to stdout as they come and, one JSON line
per seed and data set, to ``--out``.

Data sets: digits, breast cancer, wine (scikit-learn), Adult (bundled),
``synth4`` (``make_classification``, 4 classes, 2,000 rows) and ``fair``
(statsmodels' affairs survey, 6,366 rows, target: any affair).

Needs cleanlab and statsmodels (benchmark-only dependencies).

Run:  nice python benchmarks/cleaning/bench_label_cleaning.py [--seeds 0-4] [--datasets digits,fair]
Tables:  python benchmarks/cleaning/bench_label_cleaning.py --report --seeds 5-9 [--out runs.jsonl]
"""
import argparse
import json
import time
import warnings
from unittest import mock

import numpy as np
from threadpoolctl import threadpool_limits
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceTrimmer
from skinfluence.cleaning import _refit_check
from skinfluence.datasets import load_adult

DATASETS = ["digits", "breast_cancer", "wine", "adult", "synth4", "fair"]
NOISE = [("none", 0.0), ("uniform", 0.1), ("uniform", 0.2), ("uniform", 0.3),
         ("classcond", 0.2), ("instance", 0.2), ("onesided", 0.2)]
ROWS = ["noisy", "clean", "auto", "candidates", "CleanLearning"]
ADULT_TRAIN = 8000


def load(name, seed):
    if name == "adult":
        d = load_adult()
        rng = np.random.RandomState(seed)
        rows = rng.choice(len(d.y_train), ADULT_TRAIN, replace=False)
        return (np.asarray(d.X_train)[rows], np.asarray(d.X_test),
                np.asarray(d.y_train)[rows], np.asarray(d.y_test))
    if name == "fair":
        import statsmodels.api as sm

        data = sm.datasets.fair.load_pandas().data
        y = (data.pop("affairs") > 0).astype(int).to_numpy()
        X = data.to_numpy(dtype=float)
    elif name == "synth4":
        X, y = make_classification(2000, n_features=10, n_informative=6, n_classes=4,
                                   n_clusters_per_class=1, class_sep=1.5, random_state=123)
    else:
        loader = {"digits": load_digits, "breast_cancer": load_breast_cancer,
                  "wine": load_wine}[name]
        X, y = loader(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)


def corrupt(y, X, kind, rate, rng):
    """(noisy labels, mask of corrupted rows)."""
    classes = np.unique(y)
    idx = np.searchsorted(classes, y)
    n, K = len(y), len(classes)
    flip = np.zeros(n, dtype=bool)
    new = idx.copy()
    if kind in ("uniform", "classcond"):
        flip[rng.choice(n, int(round(rate * n)), replace=False)] = True
        shift = rng.randint(1, K, size=n) if kind == "uniform" else 1
        new = np.where(flip, (idx + shift) % K, idx)
    elif kind == "onesided":
        for k in range(1, K):
            members = np.flatnonzero(idx == k)
            flip[rng.choice(members, int(round(rate * len(members))), replace=False)] = True
        new = np.where(flip, 0, idx)
    elif kind == "instance":
        P = lr().fit(X, idx).predict_proba(X)
        p_true = P[np.arange(n), idx]
        P[np.arange(n), idx] = -1.0
        other = np.argmax(P, axis=1)
        margin = p_true - P[np.arange(n), other]
        w = np.exp(-np.maximum(margin, 0.0) / 0.25) + 1e-12
        flip[rng.choice(n, int(round(rate * n)), replace=False, p=w / w.sum())] = True
        new = np.where(flip, other, idx)
    return classes[new], flip


def lr():
    return LogisticRegression(C=1.0, max_iter=2000)


def run_cell(name, kind, rate, seed):
    X_tr, X_te, y_tr, y_te = load(name, seed)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    y_noisy, flipped = corrupt(y_tr, X_tr, kind, rate, np.random.RandomState(seed))
    classes = np.unique(y_noisy)
    out = {"true_rate": float(flipped.mean())}

    def record(row, fit):
        start = time.perf_counter()
        model, flags, noise = fit()
        r = {"acc": float(model.score(X_te, y_te)), "time": time.perf_counter() - start}
        if flags is not None:
            r.update(share=float(flags.mean()), noise=float(noise),
                     prec=float(flipped[flags].mean()) if flags.any() else None,
                     rec=float(flipped[flags].sum() / flipped.sum()) if flipped.any() else None,
                     prec_class=[float(flipped[flags & (y_noisy == c)].mean())
                                 if (flags & (y_noisy == c)).any() else None for c in classes],
                     flags_class=[int((flags & (y_noisy == c)).sum()) for c in classes])
        if hasattr(model, "refit_check_"):
            r["check"] = model.refit_check_
        out[row] = r

    record("noisy", lambda: (lr().fit(X_tr, y_noisy), None, None))
    record("clean", lambda: (lr().fit(X_tr, y_tr), None, None))

    def auto():
        trim = InfluenceTrimmer(lr(), fraction="auto", random_state=seed).fit(X_tr, y_noisy)
        return trim, ~trim.support_, trim.noise_rate_

    def clean_learning():
        from cleanlab.classification import CleanLearning

        cl = CleanLearning(lr(), seed=seed, cv_n_folds=5).fit(X_tr, y_noisy)
        flags = cl.label_issues_df["is_label_issue"].to_numpy()
        return cl, flags, flags.mean()

    def candidates():
        with mock.patch.object(_refit_check, "choose_amount",
                               lambda tallies, alpha=None: _refit_check.CheckResult(1.0)):
            return auto()

    record("auto", auto)
    record("candidates", candidates)
    record("CleanLearning", clean_learning)
    return out


def cells(datasets):
    for name in datasets:
        for kind, rate in NOISE:
            if kind == "classcond" and name in ("breast_cancer", "adult", "fair"):
                continue  # two classes: the same as uniform
            yield name, kind, rate


def seeds_arg(text):
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def fmt(values, scale=1.0, digits=2):
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float) * scale
    if np.all(np.isnan(v)):
        return ""
    return f"{np.nanmean(v):.{digits}f} +- {np.nanstd(v):.{digits}f}"


def per_class_precision(runs):
    """Each given class's flag precision, mean over the seeds where it has flags, and its
    mean number of flags; the lowest of them for more than 4 classes."""
    K = len(runs[0]["auto"]["prec_class"])
    cells = []
    for c in range(K):
        v = [r["auto"]["prec_class"][c] for r in runs if r["auto"]["prec_class"][c] is not None]
        n = np.mean([r["auto"]["flags_class"][c] for r in runs])
        cells.append((np.mean(v) if v else None, n, c))
    if K <= 4:
        return " / ".join("-" if p is None else f"{p:.2f} ({n:.0f})" for p, n, _ in cells)
    flagged = [cell for cell in cells if cell[0] is not None]
    if not flagged:
        return "-"
    p, n, c = min(flagged)
    return f"lowest: class {c}, {p:.2f} ({n:.0f})"


def report(path, seeds):
    """Markdown tables of the runs in ``path`` whose seed is in ``seeds``."""
    runs = [json.loads(line) for line in open(path)]
    runs = [r for r in runs if r["seed"] in seeds]
    groups = {}
    for r in runs:
        groups.setdefault((r["data"], r["kind"], r["rate"]), []).append(r)
    print("| data | noise | seeds | noisy | clean | auto | candidates | CleanLearning "
          "| auto - CL (paired) "
          "| auto trimmed | CL trimmed | auto precision (base rate) | CL precision "
          "| auto per-class precision (flags) | auto recall | est. noise auto / CL / true "
          "| acted | fit s auto / CL |")
    print("|" + " --- |" * 18)
    for (name, kind, rate), rs in groups.items():
        acc = {row: [r[row]["acc"] for r in rs] for row in ROWS}
        diff = 100 * (np.array(acc["auto"]) - np.array(acc["CleanLearning"]))
        a = [r["auto"] for r in rs]
        c = [r["CleanLearning"] for r in rs]
        true = np.mean([r["true_rate"] for r in rs])
        print(f"| {name} | {kind} {rate:.0%} | {len(rs)} | {fmt(acc['noisy'], 100)} "
              f"| {fmt(acc['clean'], 100)} | {fmt(acc['auto'], 100)} "
              f"| {fmt(acc['candidates'], 100)} "
              f"| {fmt(acc['CleanLearning'], 100)} | {diff.mean():+.2f} +- {diff.std():.2f} "
              f"| {fmt([x['share'] for x in a], digits=3)} "
              f"| {fmt([x['share'] for x in c], digits=3)} "
              f"| {fmt([x['prec'] for x in a])} ({true:.2f}) | {fmt([x['prec'] for x in c])} "
              f"| {per_class_precision(rs)} | {fmt([x['rec'] for x in a])} "
              f"| {np.mean([x['noise'] for x in a]):.3f} / {np.mean([x['noise'] for x in c]):.3f}"
              f" / {true:.3f} | {sum(x['check']['acted'] for x in a)}/{len(rs)} "
              f"| {np.median([x['time'] for x in a]):.2f} / "
              f"{np.median([x['time'] for x in c]):.2f} |")


def targets(path, seeds):
    """One line per cell: each target met (yes) or not (the figure)."""
    runs = [json.loads(line) for line in open(path)]
    groups = {}
    for r in runs:
        if r["seed"] in seeds:
            groups.setdefault((r["data"], r["kind"], r["rate"]), []).append(r)
    print("| data | noise | clean: max trimmed <= 3% | clean: acc - noisy >= -0.2 "
          "| noisy: acc - CL >= -0.3 | precision >= base rate | noise_rate_ within 0.05 "
          "(where CL's is) |")
    print("|" + " --- |" * 7)
    gaps = []
    for (name, kind, rate), rs in groups.items():
        a = [r["auto"] for r in rs]
        acc = lambda row: np.array([r[row]["acc"] for r in rs])  # noqa: E731
        true = np.mean([r["true_rate"] for r in rs])
        cells = ["", "", "", "", ""]
        if kind == "none":
            share = max(x["share"] for x in a)
            gain = 100 * (acc("auto") - acc("noisy")).mean()
            cells[0] = "yes" if share <= 0.03 else f"no: {share:.3f}"
            cells[1] = "yes" if gain >= -0.2 else f"no: {gain:+.2f}"
        else:
            gap = 100 * (acc("auto") - acc("CleanLearning")).mean()
            gaps.append(gap)
            cells[2] = ("yes" if gap >= -0.3 else "no") + f": {gap:+.2f}"
            prec = [x["prec"] for x in a if x["prec"] is not None]
            base = np.mean([r["true_rate"] for r in rs])
            cells[3] = "no flags" if not prec else \
                ("yes" if np.mean(prec) >= base else "no") + f": {np.mean(prec):.2f} / {base:.2f}"
            ours = abs(np.mean([x["noise"] for x in a]) - true)
            theirs = abs(np.mean([r["CleanLearning"]["noise"] for r in rs]) - true)
            cells[4] = ("yes" if ours <= 0.05 else "no") + f": {ours:.3f}" if theirs <= 0.05 \
                else f"n/a (CL off by {theirs:.3f}; ours {ours:.3f})"
        print(f"| {name} | {kind} {rate:.0%} | " + " | ".join(cells) + " |")
    print(f"\nNoisy cells: auto - CleanLearning {np.mean(gaps):+.2f} points on average over "
          f"{len(gaps)} cells; {sum(g >= -0.3 for g in gaps)} of them at or above -0.3.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seeds_arg, default=seeds_arg("0-4"))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--out", default="label_cleaning_runs.jsonl")
    parser.add_argument("--report", action="store_true",
                        help="print the tables of the runs already in --out, run nothing")
    args = parser.parse_args()
    if args.report:
        report(args.out, set(args.seeds))
        print()
        return targets(args.out, set(args.seeds))
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    print("BLAS threads pinned to 1 (threadpoolctl).", flush=True)
    with threadpool_limits(1), open(args.out, "a") as log:
        for name, kind, rate in cells(args.datasets.split(",")):
            for seed in args.seeds:
                run = run_cell(name, kind, rate, seed)
                run.update(data=name, kind=kind, rate=rate, seed=seed)
                log.write(json.dumps(run) + "\n")
                log.flush()
                a, c = run["auto"], run["CleanLearning"]
                print(f"{name} {kind} {rate:.1f} seed {seed}: noisy {run['noisy']['acc']:.4f} "
                      f"auto {a['acc']:.4f} (trim {a['share']:.3f}, est {a['noise']:.3f}) "
                      f"CL {c['acc']:.4f} (trim {c['share']:.3f}) true {run['true_rate']:.3f} "
                      f"check {a.get('check')}", flush=True)


if __name__ == "__main__":
    main()
