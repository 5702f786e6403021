"""The ``skinfluence`` command line: score or clean a CSV / Parquet file, or run the demo.

Commands (``skinfluence COMMAND --help`` for each one's options)::

    skinfluence score data.csv --target income -o scores.csv
    skinfluence clean data.parquet --target label --action trim -o cleaned.parquet
    skinfluence demo

``score`` and ``clean`` fit a logistic regression on the file's columns
(numeric ones standardised, the others one-hot encoded) and score every row
with cross-fitting, so no separate validation file is needed. Problems with
the input (a missing file or column, an empty file, values that cannot be
encoded, a target with one class) are reported on stderr with exit status 2.
"""
import argparse
import os
import sys

import numpy as np

from ._tabular import (TableError, check_column, make_encoder, prepare_features, read_table,
                       target_values, write_table)


def demo(output=None, out=None):
    """The demo: label cleaning, fairness and robustness on bundled real data (``_demo``)."""
    from ._demo import run_demo

    return run_demo(output, out=out)


_DESCRIPTION = """\
Score how much each training row of a table helps or hurts a model, and clean
the table with the scores. Higher score = more beneficial; negative =
detrimental. Rows are scored with k-fold cross-fitting: a model trained on
the other folds measures each row's influence on its held-out fold.
"""

_EPILOG = """\
examples:
  skinfluence score data.csv --target income -o scores.csv
  skinfluence score data.csv --target income --sensitive sex \\
      --objective demographic_parity -o scores.csv
  skinfluence clean data.parquet --target label --action trim --fraction 0.05 \\
      -o cleaned.parquet
  skinfluence demo

Files: .csv, .csv.gz, .parquet (.pq). Numeric columns are standardised, the
others one-hot encoded; the model is a logistic regression. Errors in the
input go to stderr with exit status 2.
"""

_METHODS = ("ip", "ip_ensemble", "exact_hessian", "sampled_hessian", "newton_loo")
_OBJECTIVES = ("utility", "demographic_parity", "adversarial_robustness")
_ACTIONS = ("trim", "reweight", "relabel")


def _fraction(text):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1) or 'auto', got {text!r}")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1) or 'auto', got {text!r}")
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text!r}")
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text!r}")
    return value


def _common_options(p):
    p.add_argument("file", help="training data: .csv, .csv.gz, .parquet or .pq")
    p.add_argument("--target", required=True, metavar="COL", help="the label column")
    p.add_argument("--sensitive", metavar="COL", default=None,
                   help="binary sensitive column, for --objective demographic_parity "
                        "(it stays a feature)")
    p.add_argument("--method", choices=_METHODS, default="ip",
                   help="influence method (default: %(default)s)")
    p.add_argument("--objective", choices=_OBJECTIVES, default="utility",
                   help="what the influence is measured on (default: %(default)s)")
    p.add_argument("--cv", type=_positive_int, default=5, metavar="K",
                   help="folds of the cross-fitting (default: %(default)s)")
    p.add_argument("--validation", metavar="FILE", default=None,
                   help="trusted validation data with the same columns: every row is scored "
                        "against it instead of cross-fitting")
    p.add_argument("--C", type=float, default=1.0,
                   help="inverse regularisation of the logistic regression "
                        "(default: %(default)s)")
    p.add_argument("--random-state", type=int, default=0, metavar="SEED")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="where to write the result (.csv or .parquet)")


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="skinfluence", description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"skinfluence {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "score", help="score every row of a table",
        description="Score every row of FILE and write the table with two more columns: "
                    "influence_score (higher = more beneficial) and influence_rank "
                    "(1 = most detrimental).")
    _common_options(p)

    p = sub.add_parser(
        "clean", help="trim, reweight or relabel the most detrimental rows",
        description="Score every row of FILE, act on the scores and write the cleaned table. "
                    "trim: the kept rows; reweight: every row plus a sample_weight column; "
                    "relabel: every row with the target replaced where relabeled, plus a "
                    "relabeled column.")
    _common_options(p)
    p.add_argument("--action", choices=_ACTIONS, required=True)
    p.add_argument("--fraction", type=_fraction, default=None, metavar="F",
                   help="share of rows to trim or relabel, in [0, 1), or 'auto' "
                        "(default: the estimator's)")

    p = sub.add_parser("demo", help="run the demo on bundled data and print the result",
                       description="Label cleaning (digits, 20%% flipped labels), fairness and "
                       "robustness (UCI Adult) before and after skinfluence, in one table.")
    p.add_argument("--output", default=None, metavar="DIR",
                   help="folder for the demo's scores and figure (created if missing)")
    return parser


def _load(args):
    """(frame, X encoded, y, sensitive, validation tuple or None) from the arguments."""
    frame = read_table(args.file)
    check_column(frame, args.target, "--target", args.file)
    if args.sensitive is not None:
        check_column(frame, args.sensitive, "--sensitive", args.file)
    if args.objective == "demographic_parity" and args.sensitive is None:
        raise TableError("--objective demographic_parity needs --sensitive COL.")
    y = target_values(frame, args.target, args.file)
    X, numeric, categorical = prepare_features(frame, args.target, args.file)
    encoder = make_encoder(numeric, categorical).fit(X)
    s = None if args.sensitive is None else frame[args.sensitive].to_numpy()
    val = None
    if args.validation is not None:
        vframe = read_table(args.validation, "validation file")
        for col in frame.columns:
            check_column(vframe, col, "column", args.validation)
        y_val = target_values(vframe, args.target, args.validation)
        X_val, _, _ = prepare_features(vframe[frame.columns], args.target, args.validation)
        s_val = None if s is None else vframe[args.sensitive].to_numpy()
        val = (encoder.transform(X_val), y_val, s_val)
    return frame, encoder.transform(X), y, s, val


def _fit(estimator, args, X, y, s, val):
    kwargs = {}
    if args.objective == "demographic_parity":
        kwargs["sensitive_features"] = s
    if val is not None:
        kwargs.update(X_val=val[0], y_val=val[1])
        if args.objective == "demographic_parity":
            kwargs["sensitive_features_val"] = val[2]
    return estimator.fit(X, y, **kwargs)


def _estimator(cls, args, **params):
    from sklearn.linear_model import LogisticRegression

    return cls(LogisticRegression(C=args.C, max_iter=1000), method=args.method,
               objective=args.objective, cv=args.cv, random_state=args.random_state, **params)


def _how(args):
    against = ("the validation file" if args.validation else f"{args.cv}-fold cross-fitting")
    return f"{args.method}, objective {args.objective}, {against}"


def score(args, out=None):
    """``skinfluence score``: the table plus influence_score and influence_rank."""
    from .estimators import InfluenceTrimmer

    out = sys.stdout if out is None else out
    frame, X, y, s, val = _load(args)
    scorer = _fit(_estimator(InfluenceTrimmer, args, fraction=0.0), args, X, y, s, val)
    scores = scorer.scores_
    result = frame.copy()
    result["influence_score"] = scores
    order = np.argsort(np.where(np.isfinite(scores), scores, np.inf), kind="stable")
    rank = np.empty(len(scores), dtype=int)
    rank[order] = np.arange(1, len(scores) + 1)
    result["influence_rank"] = rank
    write_table(result, args.output)
    n_neg = int(np.sum(scores < 0))
    print(f"Scored {len(scores)} rows ({_how(args)}); {n_neg} have a negative score "
          f"(detrimental). Most detrimental rows (0-based): "
          f"{', '.join(map(str, order[:5]))}.\nWritten to {args.output}", file=out)
    return result


def clean(args, out=None):
    """``skinfluence clean``: the table trimmed, reweighted or relabeled."""
    from .estimators import InfluenceRelabeler, InfluenceReweighter, InfluenceTrimmer

    out = sys.stdout if out is None else out
    if args.action == "reweight" and args.fraction is not None:
        raise TableError("--fraction applies to --action trim and relabel; reweight "
                         "reweights every row.")
    cls = {"trim": InfluenceTrimmer, "reweight": InfluenceReweighter,
           "relabel": InfluenceRelabeler}[args.action]
    params = {} if args.fraction is None else {"fraction": args.fraction}
    frame, X, y, s, val = _load(args)
    model = _fit(_estimator(cls, args, **params), args, X, y, s, val)
    n = len(frame)
    if args.action == "trim":
        result = frame.iloc[np.flatnonzero(model.support_)]
        what = f"trimmed {n - len(result)} of {n} rows"
    elif args.action == "reweight":
        result = frame.copy()
        result["sample_weight"] = model.weights_
        what = (f"reweighted {n} rows (weights {model.weights_.min():.3g} to "
                f"{model.weights_.max():.3g})")
    else:
        result = frame.copy()
        result[args.target] = model.y_relabeled_
        result["relabeled"] = model.relabeled_
        what = f"relabeled {int(model.relabeled_.sum())} of {n} rows"
    write_table(result, args.output)
    print(f"{args.action}: {what} ({_how(args)}).\nWritten to {args.output}", file=out)
    return result


def main(argv=None):
    """Run the command line; returns the exit status (2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            if args.output is not None and os.path.exists(args.output) \
                    and not os.path.isdir(args.output):
                raise TableError(f"--output {args.output!r} is a file; the demo writes into a "
                                 "folder (give a folder name).")
            demo(args.output)
        elif args.command == "score":
            score(args)
        else:
            clean(args)
    except (TableError, ValueError, OSError) as exc:
        print(f"skinfluence {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
