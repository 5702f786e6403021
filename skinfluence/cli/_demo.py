"""``make demo`` / ``skinfluence demo``: the main jobs on bundled real data, in under a minute.

1. Label cleaning (scikit-learn's handwritten digits, 20% of the training labels
   flipped, no trusted validation set): a logistic regression before and after
   ``InfluenceTrimmer(fraction="auto")``, and how many of its flags were flips.
2. Fairness (UCI Adult, sensitive attribute sex): the demographic-parity gap
   before and after reweighting the samples by their influence on it, asking
   for a gap of 0.05 (``target_gap``).
3. Robustness (UCI Adult): accuracy under an adaptive l2 attack before and after
   trimming the samples most detrimental to the budgeted worst-case loss.

It prints a before/after table, saves the label-cleaning scores to
``label_cleaning_scores.csv`` and a figure of their distribution to
``label_cleaning.png`` in the output folder.
"""
import os
import sys
import warnings

SEED = 0
FLIP_RATE = 0.2
DP_TARGET = 0.05
ROBUST_EPSILON, ROBUST_C, ROBUST_FRACTION = 0.5, 1e-3, 0.05


def _label_cleaning():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from ..datasets import flip_labels
    from ..estimators import InfluenceTrimmer

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y,
                                              random_state=SEED)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    y_noisy, flipped = flip_labels(y_tr, FLIP_RATE, random_state=SEED)
    model = LogisticRegression(max_iter=2000)
    plain = model.fit(X_tr, y_noisy)
    trimmer = InfluenceTrimmer(LogisticRegression(max_iter=2000), fraction="auto",
                               random_state=SEED).fit(X_tr, y_noisy)
    flags = ~trimmer.support_
    return {"before": plain.score(X_te, y_te), "after": trimmer.score(X_te, y_te),
            "n_flipped": int(flipped.sum()), "n_flagged": int(flags.sum()),
            "true_flags": int(flipped[flags].sum()), "noise_rate": trimmer.noise_rate_,
            "trimmer": trimmer, "flipped": flipped, "y_noisy": y_noisy}


def _adult():
    from sklearn.preprocessing import StandardScaler

    from ..datasets import load_adult

    d = load_adult(sensitive="sex")
    scaler = StandardScaler().fit(d.X_train)
    return d, scaler.transform(d.X_train), scaler.transform(d.X_test)


def _fairness(d, X_tr, X_te):
    from sklearn.linear_model import LogisticRegression

    from ..estimators import InfluenceReweighter
    from ..metrics import demographic_parity_difference

    plain = LogisticRegression(max_iter=1000).fit(X_tr, d.y_train)
    fair = InfluenceReweighter(LogisticRegression(max_iter=1000), objective="demographic_parity",
                               target_gap=DP_TARGET, random_state=SEED)
    fair.fit(X_tr, d.y_train, sensitive_features=d.s_train)

    def gap(m):
        return demographic_parity_difference(d.y_test, m.predict(X_te),
                                             sensitive_features=d.s_test)

    return {"before": (plain.score(X_te, d.y_test), gap(plain)),
            "after": (fair.score(X_te, d.y_test), gap(fair))}


def _robustness(d, X_tr, X_te):
    from sklearn.linear_model import LogisticRegression

    from ..estimators import InfluenceTrimmer
    from ..metrics import robust_accuracy
    from ..objectives import AdversarialRobustness

    plain = LogisticRegression(C=ROBUST_C, max_iter=1000).fit(X_tr, d.y_train)
    objective = AdversarialRobustness(epsilon=ROBUST_EPSILON, norm="l2")
    trimmer = InfluenceTrimmer(LogisticRegression(C=ROBUST_C, max_iter=1000), objective=objective,
                               fraction=ROBUST_FRACTION, random_state=SEED).fit(X_tr, d.y_train)

    def both(m):
        return (m.score(X_te, d.y_test),
                robust_accuracy(m, X_te, d.y_test, epsilon=ROBUST_EPSILON, norm="l2"))

    return {"before": both(plain), "after": both(trimmer)}


def run_demo(output=None, out=None):
    """Run the three jobs, print the table, save the scores and the figure.

    Returns the measured figures (a dict per job).
    """
    out = sys.stdout if out is None else out
    warnings.filterwarnings("ignore", category=FutureWarning)
    print("skinfluence demo: scores are influence on an objective, higher = more beneficial.\n",
          file=out)
    lc = _label_cleaning()
    print(f"1. Label cleaning: digits, {lc['n_flipped']} of {len(lc['flipped'])} training labels "
          f"flipped ({FLIP_RATE:.0%}), no trusted validation set.", file=out)
    print(f"   InfluenceTrimmer(LogisticRegression(), fraction='auto') estimated "
          f"{lc['noise_rate']:.1%} wrong labels and dropped {lc['n_flagged']} samples: "
          f"{lc['true_flags']} of them were flipped "
          f"({lc['true_flags'] / max(lc['n_flagged'], 1):.0%} precision, "
          f"{lc['true_flags'] / lc['n_flipped']:.0%} of the flips found).", file=out)
    d, X_tr, X_te = _adult()
    fair = _fairness(d, X_tr, X_te)
    rob = _robustness(d, X_tr, X_te)
    rows = [
        ("label cleaning (digits)", "test accuracy", lc["before"], lc["after"]),
        ("fairness (Adult, sex)", "test accuracy", fair["before"][0], fair["after"][0]),
        ("", "demographic-parity gap", fair["before"][1], fair["after"][1]),
        (f"robustness (Adult, C={ROBUST_C:g})", "test accuracy", rob["before"][0],
         rob["after"][0]),
        ("", f"accuracy, l2 attack eps={ROBUST_EPSILON}", rob["before"][1], rob["after"][1]),
    ]
    print(f"2. Fairness: reweight Adult's training samples by their influence on the "
          f"demographic-parity gap (sex), asking for a gap of {DP_TARGET} (target_gap).",
          file=out)
    print(f"3. Robustness: trim the {ROBUST_FRACTION:.0%} most detrimental to the loss under "
          f"the worst l2 attack of radius {ROBUST_EPSILON}, computed against each model.\n",
          file=out)
    print(f" {'job':32s} {'measure':34s} {'before':>7s} {'after':>7s}", file=out)
    for job, measure, before, after in rows:
        print(f" {job:32s} {measure:34s} {before:7.3f} {after:7.3f}", file=out)
    if output:
        _save(output, lc, out)
    figures = {k: v for k, v in lc.items() if k not in ("trimmer", "flipped", "y_noisy")}
    return {"label_cleaning": figures,
            "fairness": fair, "robustness": rob}


def _save(output, lc, out):
    import pandas as pd

    os.makedirs(output, exist_ok=True)
    trimmer = lc["trimmer"]
    frame = trimmer.report(y=lc["y_noisy"])
    frame["flipped"] = lc["flipped"]
    path = os.path.join(output, "label_cleaning_scores.csv")
    pd.DataFrame(frame).to_csv(path, index_label="sample")
    print(f"\nScores of the {len(frame)} digits saved to {path}", file=out)
    try:
        import matplotlib

        matplotlib.use("Agg")
        from ..plotting import plot_score_distribution
    except ImportError:  # pragma: no cover - matplotlib is optional
        print("(matplotlib not installed: no figure)", file=out)
        return
    ax = plot_score_distribution(trimmer, truth=lc["flipped"], label="dropped (fraction='auto')",
                                 truth_label="flipped label")
    ax.set_title("Digits, 20% flipped labels: cross-fitted influence scores")
    figure = os.path.join(output, "label_cleaning.png")
    ax.figure.savefig(figure, dpi=120, bbox_inches="tight")
    print(f"Figure saved to {figure}", file=out)
