"""The ``skinfluence`` command line: score or clean a CSV / Parquet file, or run the demo.

Commands (``skinfluence COMMAND --help`` for each one's options)::

    skinfluence score data.csv --target income -o scores.csv
    skinfluence clean data.parquet --target label --action trim -o cleaned.parquet
    skinfluence demo

``score`` and ``clean`` fit a logistic regression on the file's columns
(numeric ones standardised, the others one-hot encoded) and score every row
with cross-fitting, so no separate validation file is needed. Problems with
the input (a missing file or column, an empty or corrupt file, values that
cannot be encoded, a target with one class) are reported on stderr with exit
status 2, before anything is written.

The output is written to a temporary file that replaces ``-o FILE`` only
once it is complete: an interruption (Ctrl-C, SIGTERM) leaves a previous file
there as it was. The input is never overwritten, and an existing output only
with ``--overwrite``.
"""
import argparse
import os
import signal
import sys
import warnings

import numpy as np

from ._tabular import (IMPUTE_STRATEGIES, TableError, check_column, check_output,
                       drop_missing, find_identifiers, make_encoder, prepare_features,
                       read_table, target_values, write_table)


def demo(output=None, out=None):
    """The demo: label cleaning, fairness and robustness on bundled real data (``_demo``)."""
    from ._demo import run_demo

    try:
        import pandas  # noqa: F401
    except ImportError:
        raise TableError("the demo reads the bundled UCI Adult table, which needs pandas: "
                         "pip install 'skinfluence[pandas]'.") from None

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
others one-hot encoded (text columns with a different value in almost every
row, such as identifiers, are left out with a warning); the model is a
logistic regression. Missing values: --impute or --dropna. Errors in the
input go to stderr with exit status 2. The output is written atomically and
never over the input; an existing output is replaced only with --overwrite.
"""

_METHODS = ("ip", "ip_ensemble", "exact_hessian", "sampled_hessian", "newton_loo")
_OBJECTIVES = ("utility", "demographic_parity", "equalized_odds", "adversarial_robustness")
_FAIRNESS = ("demographic_parity", "equalized_odds")
_TASKS = ("auto", "classification", "regression")
#: distinct integer targets past which --task auto reads a numeric target as a regression's
MAX_AUTO_CLASSES = 20
_ACTIONS = ("trim", "reweight", "relabel")
#: the columns each command adds to the table; an input column of the same name is refused
_ADDED_COLUMNS = {"score": ("influence_score", "influence_rank"), "trim": (),
                  "reweight": ("sample_weight",), "relabel": ("relabeled",)}


def _argument(convert, accept, expected, words=()):
    """An argparse type: ``convert(text)`` if ``accept`` holds (or ``text`` is in ``words``)."""
    def parse(text):
        if text in words:
            return text
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


_fraction = _argument(float, lambda v: 0 <= v < 1, "a number in [0, 1) or 'auto'", ("auto",))
_positive_number = _argument(float, lambda v: np.isfinite(v) and v > 0, "a number > 0")
_gap = _argument(float, lambda v: 0 < v < 1, "a number in (0, 1)")
_share = _argument(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
_positive_int = _argument(int, lambda v: v >= 2, "an integer >= 2")


def _common_options(p):
    p.add_argument("file", help="training data: .csv, .csv.gz, .parquet or .pq")
    p.add_argument("--target", required=True, metavar="COL", help="the label column")
    p.add_argument("--sensitive", metavar="COL", default=None,
                   help="sensitive column with two or more groups, for the fairness objectives "
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
    p.add_argument("--drop", metavar="COL", action="append", default=[],
                   help="leave this column out of the features (it stays in the output); "
                        "repeat for several")
    missing = p.add_mutually_exclusive_group()
    missing.add_argument("--impute", choices=IMPUTE_STRATEGIES, default=None,
                         help="fill missing feature values: numeric columns with their mean, "
                              "median or most frequent value, text columns with their most "
                              "frequent value")
    missing.add_argument("--dropna", action="store_true",
                         help="leave out the rows with a missing value in the target or a "
                              "feature (they are not in the output)")
    p.add_argument("--task", choices=_TASKS, default="auto",
                   help="classification (a logistic regression) or regression (a ridge "
                        "regression); auto: regression for a numeric target with fractional "
                        "values or more than 20 distinct ones (default: %(default)s)")
    p.add_argument("--C", type=float, default=1.0,
                   help="inverse regularisation of the logistic regression (ridge: "
                        "alpha = 1/C) (default: %(default)s)")
    p.add_argument("--random-state", type=int, default=0, metavar="SEED")
    p.add_argument("--verbose", action="store_true",
                   help="progress bars on stderr over the folds and passes (needs tqdm)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="where to write the result (.csv, .csv.gz or .parquet); never the "
                        "input file")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output file if it exists (default: refuse)")


def build_parser():
    from .. import __version__

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
                   help="share of rows to trim or relabel, in [0, 1), or 'auto': as many as "
                        "the held-out predictions say are mislabeled (default: auto for the "
                        "utility objective, else 0.05 or what reaches --target-gap)")
    p.add_argument("--target-gap", type=_gap, default=None, metavar="G",
                   help="with a fairness objective: act until the cross-fitted fairness gap "
                        "is at most G (replaces --fraction)")
    p.add_argument("--utility-slack", type=_share, default=None, metavar="S",
                   help="with --target-gap: the share, in [0, 1], of the predicted validation "
                        "loss that each step may give up next to following the fairness "
                        "scores alone (0: none; 1: fairness alone; default 0.25)")
    p.add_argument("--max-weight", type=_positive_number, default=2.0, metavar="W",
                   help="reweight: the largest weight a row can get (default: %(default)s)")
    p.add_argument("--temperature", type=_positive_number, default=1.0, metavar="T",
                   help="reweight: a larger T spreads the weights less (default: %(default)s)")

    p = sub.add_parser("demo", help="run the demo on bundled data and print the result",
                       description="Label cleaning (digits, 20%% flipped labels), fairness and "
                       "robustness (UCI Adult) before and after skinfluence, in one table.")
    p.add_argument("--output", default=None, metavar="DIR",
                   help="folder for the demo's scores and figure (created if missing)")
    return parser


def _check_request(args):
    """Everything about the arguments that can be refused before reading any data."""
    check_output(args.output, (args.file, args.validation), args.overwrite)
    fair = args.objective in _FAIRNESS
    if fair and args.sensitive is None:
        raise TableError(f"--objective {args.objective} needs --sensitive COL.")
    if getattr(args, "target_gap", None) is not None:
        if not fair:
            raise TableError("--target-gap is a fairness gap; it needs --objective "
                             "demographic_parity or equalized_odds.")
        if args.fraction is not None:
            raise TableError("--target-gap chooses how many rows to act on; leave out "
                             "--fraction.")
    elif getattr(args, "utility_slack", None) is not None:
        raise TableError("--utility-slack bounds the steps of --target-gap; give --target-gap.")
    if args.target in args.drop:
        raise TableError(f"--drop {args.target!r} is the --target column.")


def _load(args):
    """(frame, X encoded, y, sensitive, validation tuple or None) from the arguments."""
    frame = read_table(args.file)
    check_column(frame, args.target, "--target", args.file)
    if args.sensitive is not None:
        check_column(frame, args.sensitive, "--sensitive", args.file)
    for col in args.drop:
        check_column(frame, col, "--drop", args.file)
    added = _ADDED_COLUMNS["score" if args.command == "score" else args.action]
    clash = [c for c in added if c in frame.columns]
    if clash:
        raise TableError(f"{args.file!r} already has a column {clash[0]!r}, which the output "
                         f"adds; rename that column first (it would be overwritten).")
    impute = args.impute
    identifiers = find_identifiers(frame, args.target, args.file, args.drop)
    unused = args.drop + identifiers  # in the output, not read: their gaps drop no row
    if args.dropna:
        frame, n_dropped = drop_missing(frame, frame.columns.drop(unused), args.file)
        if n_dropped:
            print(f"--dropna: left out {n_dropped} row(s) with a missing value.",
                  file=sys.stderr)
    args.task = _task(args, frame[args.target])
    if args.task == "regression" and args.objective != "utility":
        raise TableError(f"--objective {args.objective} needs a classification target; "
                         f"--target {args.target!r} is a regression's (--task regression), "
                         "which the command line scores on the validation loss only.")
    y = target_values(frame, args.target, args.file, regression=args.task == "regression")
    X, numeric, categorical, _ = prepare_features(
        frame, args.target, args.file, drop=args.drop, impute=impute, identifiers=identifiers)
    encoder = make_encoder(numeric, categorical, impute).fit(X)
    s = None if args.sensitive is None else frame[args.sensitive].to_numpy()
    val = None
    if args.validation is not None:
        vframe = read_table(args.validation, "validation file")
        for col in frame.columns:
            check_column(vframe, col, "column", args.validation)
        vframe = vframe[frame.columns]
        if args.dropna:
            vframe, _ = drop_missing(vframe, vframe.columns.drop(unused), args.validation)
        y_val = target_values(vframe, args.target, args.validation,
                              regression=args.task == "regression")
        X_val, _, _, _ = prepare_features(vframe, args.target, args.validation, drop=args.drop,
                                          impute=impute, identifiers=identifiers)
        s_val = None if s is None else vframe[args.sensitive].to_numpy()
        val = (encoder.transform(X_val), y_val, s_val)
    elif args.task == "regression":
        if len(y) < 2 * args.cv:
            raise TableError(f"--cv {args.cv} needs at least {2 * args.cv} rows; {args.file!r} "
                             f"has {len(y)}. Lower --cv, add rows, or give a --validation file.")
    else:
        _check_rows_per_class(y, args.cv, args.file)
    return frame, encoder.transform(X), y, s, val


def _task(args, target):
    """classification or regression: as asked, or read from the target column."""
    if args.task != "auto":
        return args.task
    import pandas as pd

    if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_numeric_dtype(target):
        return "classification"
    values = target.dropna().to_numpy(dtype=np.float64)
    fractional = bool(np.any(values != np.round(values)))
    return "regression" if fractional or len(np.unique(values)) > MAX_AUTO_CLASSES \
        else "classification"


def _check_rows_per_class(y, cv, path):
    """Cross-fitting holds out rows of every class in each of ``cv`` folds."""
    classes, counts = np.unique(y.astype(str), return_counts=True)
    if counts.min() < cv:
        smallest = str(classes[counts.argmin()])
        raise TableError(f"--cv {cv} needs at least {cv} rows of each class of the target; "
                         f"class {smallest!r} has {counts.min()} in {path!r}. Lower --cv, add "
                         "rows, or give a --validation file.")


def _fit(estimator, args, X, y, s, val):
    kwargs = {}
    if args.objective in _FAIRNESS:
        kwargs["sensitive_features"] = s
    if val is not None:
        kwargs.update(X_val=val[0], y_val=val[1])
        if args.objective in _FAIRNESS:
            kwargs["sensitive_features_val"] = val[2]
    model = estimator.fit(X, y, **kwargs)
    if not np.all(np.isfinite(model.scores_)):
        raise TableError(f"{int(np.sum(~np.isfinite(model.scores_)))} row(s) got no finite "
                         "score; the table is too small or too degenerate for this method "
                         "(try --method ip, a larger --C, or more rows).")
    return model


def _estimator(cls, args, **params):
    from sklearn.linear_model import LogisticRegression, Ridge

    model = Ridge(alpha=1.0 / args.C) if args.task == "regression" else \
        LogisticRegression(C=args.C, max_iter=1000)
    return cls(model, method=args.method, objective=args.objective, cv=args.cv,
               random_state=args.random_state, verbose=int(args.verbose), **params)


def _how(args):
    against = ("the validation file" if args.validation else f"{args.cv}-fold cross-fitting")
    return f"{args.task}, {args.method}, objective {args.objective}, {against}"


def _write(result, args):
    write_table(result, args.output, (args.file, args.validation), args.overwrite)


def score(args, out=None):
    """``skinfluence score``: the table plus influence_score and influence_rank."""
    from ..estimators import InfluenceTrimmer

    out = sys.stdout if out is None else out
    _check_request(args)
    frame, X, y, s, val = _load(args)
    scorer = _fit(_estimator(InfluenceTrimmer, args, fraction=0.0), args, X, y, s, val)
    scores = scorer.scores_
    result = frame.copy()
    result["influence_score"] = scores
    order = np.argsort(scores, kind="stable")
    rank = np.empty(len(scores), dtype=int)
    rank[order] = np.arange(1, len(scores) + 1)
    result["influence_rank"] = rank
    _write(result, args)
    n_neg = int(np.sum(scores < 0))
    print(f"Scored {len(scores)} rows ({_how(args)}); {n_neg} have a negative score "
          f"(detrimental). Most detrimental rows (0-based): "
          f"{', '.join(map(str, frame.index[order[:5]]))}.\nWritten to {args.output}",
          file=out)
    return result


def clean(args, out=None):
    """``skinfluence clean``: the table trimmed, reweighted or relabeled."""
    from ..estimators import InfluenceRelabeler, InfluenceReweighter, InfluenceTrimmer

    out = sys.stdout if out is None else out
    if args.action == "reweight" and args.fraction is not None:
        raise TableError("--fraction applies to --action trim and relabel; reweight "
                         "reweights every row.")
    _check_request(args)
    cls = {"trim": InfluenceTrimmer, "reweight": InfluenceReweighter,
           "relabel": InfluenceRelabeler}[args.action]
    if args.action == "reweight":
        params = {"max_weight": args.max_weight, "temperature": args.temperature}
    elif args.fraction is not None:
        params = {"fraction": args.fraction}
    elif args.target_gap is None and args.objective == "utility":
        params = {"fraction": "auto"}  # as many as the held-out predictions say are wrong
    else:
        params = {}  # the estimator's own default share, or what reaches --target-gap
    if args.target_gap is not None:
        params["target_gap"] = args.target_gap
    if args.utility_slack is not None:
        params["utility_slack"] = args.utility_slack
    frame, X, y, s, val = _load(args)
    model = _fit(_estimator(cls, args, **params), args, X, y, s, val)
    n = len(frame)
    if args.action == "trim":
        result = frame.iloc[np.flatnonzero(model.support_)]
        what = f"trimmed {n - len(result)} of {n} rows"
    elif args.action == "reweight":
        result = frame.copy()
        result["sample_weight"] = model.weights_
        at_cap = np.mean(model.weights_ >= args.max_weight * (1 - 1e-12))
        what = (f"reweighted {n} rows (weights {model.weights_.min():.3g} to "
                f"{model.weights_.max():.3g}; {at_cap:.0%} at --max-weight {args.max_weight:g})")
    else:
        result = frame.copy()
        result[args.target] = model.y_relabeled_
        result["relabeled"] = model.relabeled_
        what = f"relabeled {int(model.relabeled_.sum())} of {n} rows"
    if getattr(model, "noise_rate_", None) is not None and args.fraction is None \
            and args.action != "reweight" and args.target_gap is None:
        wrong = "corrupted targets" if args.task == "regression" else "wrong labels"
        what += f"; estimated share of {wrong} {model.noise_rate_:.1%}"
    if args.target_gap is not None:
        what += f"; cross-fitted gap {model.validation_gap_:.3f} (asked {args.target_gap:g})"
    _write(result, args)
    print(f"{args.action}: {what} ({_how(args)}).\nWritten to {args.output}", file=out)
    return result


class _Terminated(BaseException):
    """SIGTERM, raised where the program stands so that pending writes are undone."""


def _raise_terminated(signum, frame):
    raise _Terminated


def main(argv=None):
    """Run the command line; returns the exit status (2 for bad input, 130/143 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = None
    try:  # SIGTERM unwinds like Ctrl-C, so an unfinished output is removed
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: keep the default
        pass
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            _run(args)
    except (TableError, ValueError, OSError) as exc:
        print(f"skinfluence {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, _Terminated) as exc:
        written = "" if args.command == "demo" else f"; {args.output} was not written"
        print(f"skinfluence {args.command}: interrupted{written}.", file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"skinfluence: warning: {message}", file=sys.stderr)


def _run(args):
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


if __name__ == "__main__":
    sys.exit(main())
