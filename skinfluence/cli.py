"""The ``skinfluence`` console script.

``skinfluence demo [--output DIR]`` runs the main job on bundled data: fit a
logistic regression on two Gaussian blobs with 10 flipped labels, score every
training sample with IP, ExactHessian and NewtonLOO, print the most
detrimental samples, trim with ``InfluenceTrimmer`` and refit, and save all
scores as CSV.
"""
import argparse
import csv
import os
import sys

import numpy as np


def demo(output=None, random_state=0, out=None):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from . import influence_scores
    from .datasets import make_flipped_blobs

    out = sys.stdout if out is None else out
    d = make_flipped_blobs(random_state=random_state)
    model = LogisticRegression(C=100, fit_intercept=False).fit(d.X_train, d.y_train)
    print("skinfluence demo: two Gaussian blobs, 150 training samples, 10 labels flipped;\n"
          "LogisticRegression(C=100, fit_intercept=False). Scores: higher = more beneficial,\n"
          "negative = detrimental to the validation log-loss.\n", file=out)
    results = {}
    for method in ("ip", "exact_hessian", "newton_loo"):
        results[method] = influence_scores(model, d.X_train, d.y_train, d.X_test, d.y_test,
                                           method=method, return_result=True)
    scores = results["exact_hessian"].scores
    worst = np.argsort(scores)[:10]
    print(" rank  sample  label  flipped  IP score   ExactHessian  NewtonLOO (dJ if removed)",
          file=out)
    for rank, i in enumerate(worst, 1):
        print(f" {rank:4d}  {i:6d}  {d.y_train[i]:5d}  {'yes' if d.flipped[i] else 'no':>7}  "
              f"{results['ip'].scores[i]:+9.4f}  {scores[i]:+12.4f}  "
              f"{results['newton_loo'].scores[i]:+.3e}", file=out)
    print("", file=out)
    for method, res in results.items():
        auc = roc_auc_score(d.flipped, -res.scores)
        found = int(d.flipped[np.argsort(res.scores)[:10]].sum())
        print(f" {method:14s} flipped-label detection AUC {auc:.3f}; "
              f"{found}/10 of its 10 lowest are flipped", file=out)
    # act on it: trim with cross-fitted scores (no clean validation set needed) and refit
    from .estimators import InfluenceTrimmer

    trimmer = InfluenceTrimmer(LogisticRegression(C=100, fit_intercept=False),
                               fraction=10 / len(d.y_train), random_state=random_state)
    trimmer.fit(d.X_train, d.y_train)
    removed = ~trimmer.support_
    print(f"\n InfluenceTrimmer (5-fold cross-fitted IP) removed {int(removed.sum())} samples, "
          f"{int(d.flipped[removed].sum())} of them flipped; test accuracy "
          f"{model.score(d.X_test, d.y_test):.3f} -> {trimmer.score(d.X_test, d.y_test):.3f}",
          file=out)
    if output:
        os.makedirs(output, exist_ok=True)
        path = os.path.join(output, "blobs_scores.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["sample", "x1", "x2", "label", "flipped", "ip", "exact_hessian",
                        "newton_loo", "leverage"])
            for i in range(len(d.y_train)):
                w.writerow([i, *d.X_train[i], d.y_train[i], int(d.flipped[i]),
                            results["ip"].scores[i], scores[i],
                            results["newton_loo"].scores[i], results["newton_loo"].leverage[i]])
        print(f"\nAll scores saved to {path}", file=out)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="skinfluence", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="score the bundled demo dataset and print the result")
    p.add_argument("--output", default=None, help="folder for the CSV of scores")
    p.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(args.output, args.random_state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
