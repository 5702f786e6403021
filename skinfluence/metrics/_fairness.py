"""Group-fairness metrics: selection rates, parity and equalized-odds gaps, the report."""
import numpy as np
from sklearn.utils.validation import column_or_1d

from ..utils._validation import check_binary_pos_label, check_groups, check_sample_weight


def selection_rate_by_group(y_pred, sensitive_features, *, pos_label=1, sample_weight=None):
    """Share of positive predictions in each group.

    Parameters
    ----------
    y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like of shape (n_samples,)
    pos_label : label, default=1
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    rates : dict mapping group -> selection rate

    Examples
    --------
    >>> from skinfluence.metrics import selection_rate_by_group
    >>> selection_rate_by_group([1, 0, 1, 1], ["a", "a", "b", "b"])
    {'a': 0.5, 'b': 1.0}
    """
    y_pred, s, w = _rate_inputs(y_pred, sensitive_features, sample_weight, pos_label)
    positive = (y_pred == pos_label).astype(float)
    rates = {}
    for g in np.unique(s):
        in_g = s == g
        rates[g.item() if hasattr(g, "item") else g] = float(
            np.average(positive[in_g], weights=w[in_g]))
    return rates


def _rate_inputs(y_pred, sensitive_features, sample_weight, pos_label, y_true=None):
    """Validated (y_pred, groups, weights) of the group-rate metrics."""
    y_pred = column_or_1d(np.asarray(y_pred), warn=True)
    s = check_groups(sensitive_features, "sensitive_features")
    if y_true is None and len(s) != len(y_pred):
        raise ValueError(f"sensitive_features has {len(s)} values, y_pred has {len(y_pred)}.")
    if y_true is not None and not len(y_true) == len(y_pred) == len(s):
        raise ValueError(f"y_true, y_pred and sensitive_features have {len(y_true)}, "
                         f"{len(y_pred)} and {len(s)} values; they must match.")
    check_binary_pos_label(pos_label, [y_pred] + ([] if y_true is None else [y_true]))
    w = check_sample_weight(sample_weight, len(y_pred), positive_sum=True)
    return y_pred, s, np.ones(len(y_pred)) if w is None else w


def demographic_parity_difference(y_true, y_pred, *, sensitive_features,
                                  method="between_groups", sample_weight=None):
    """The spread of the groups' selection rates (0 = demographic parity).

    fairlearn's ``fairlearn.metrics.demographic_parity_difference`` when it is
    installed; otherwise the same quantity computed here.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or None
        Unused by the gap (kept for the metric signature).
    y_pred : array-like of shape (n_samples,)
        Predicted labels; the positive label is 1.
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_columns)
        The group of each row; several columns (a DataFrame) make
        intersectional groups, one per combination of their values.
    method : {"between_groups", "to_overall"}, default="between_groups"
        fairlearn's: the largest minus the smallest group rate, or the
        largest distance of a group's rate from the overall rate.
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    gap : float

    Examples
    --------
    >>> from skinfluence.metrics import demographic_parity_difference
    >>> demographic_parity_difference([0, 0, 1, 1], [1, 0, 1, 1],
    ...                               sensitive_features=["a", "a", "b", "b"])
    0.5
    >>> demographic_parity_difference([0, 0, 1, 1], [1, 0, 1, 1], method="to_overall",
    ...                               sensitive_features=["a", "a", "b", "b"])
    0.25
    """
    _check_method(method)
    y_pred, s, w = _rate_inputs(y_pred, sensitive_features, sample_weight, 1)
    try:
        from fairlearn.metrics import demographic_parity_difference as fl_dpd
    except ImportError:
        hit = (y_pred == 1).astype(float)
        return _group_rate_gap(hit, np.ones(len(s), dtype=bool), s, w, method)
    if y_true is None:
        y_true = y_pred
    return float(fl_dpd(y_true, y_pred, sensitive_features=sensitive_features, method=method,
                        sample_weight=sample_weight))


_METHODS = ("between_groups", "to_overall")


def _check_method(method):
    if not (isinstance(method, str) and method in _METHODS):
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")


def _group_rate_gap(hit, rows, s, w, method="between_groups"):
    """Spread of the weighted means of ``hit`` over ``rows`` of each group: largest minus
    smallest ("between_groups"), or largest distance from the mean over all ``rows``
    ("to_overall")."""
    # a group with no weight in ``rows`` has no rate (fairlearn leaves it out too)
    rates = [np.average(hit[rows & (s == g)], weights=w[rows & (s == g)])
             for g in np.unique(s) if w[rows & (s == g)].sum() > 0]
    if not rates:
        return 0.0
    if method == "to_overall":
        overall = np.average(hit[rows], weights=w[rows])
        return float(max(abs(r - overall) for r in rates))
    return float(max(rates) - min(rates))


def fairness_gap(kind, y_true, y_pred, sensitive_features, *, pos_label=1, sample_weight=None):
    """The gap ``kind`` of hard predictions, in plain numpy (fast, no fairlearn).

    ``"demographic_parity"``: largest minus smallest group selection rate;
    ``"equalized_odds"``: the larger of the true- and false-positive-rate gaps
    (each largest minus smallest over the groups). Both equal fairlearn's.

    Parameters
    ----------
    kind : {"demographic_parity", "equalized_odds"}
    y_true, y_pred, sensitive_features : array-like of shape (n_samples,)
    pos_label : label, default=1
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    gap : float

    Examples
    --------
    >>> from skinfluence.metrics import fairness_gap
    >>> fairness_gap("equalized_odds", [1, 0, 1, 0], [1, 0, 1, 1],
    ...              ["a", "a", "b", "b"])
    1.0
    """
    y_true = None if kind == "demographic_parity" else column_or_1d(np.asarray(y_true), warn=True)
    y_pred, s, w = _rate_inputs(y_pred, sensitive_features, sample_weight, pos_label, y_true)
    hit = (y_pred == pos_label).astype(float)
    if kind == "demographic_parity":
        return _group_rate_gap(hit, np.ones(len(s), dtype=bool), s, w)
    if kind != "equalized_odds":
        raise ValueError(f"kind must be 'demographic_parity' or 'equalized_odds', got {kind!r}.")
    positive = y_true == pos_label
    return max(_group_rate_gap(hit, positive, s, w), _group_rate_gap(hit, ~positive, s, w))


def equalized_odds_difference(y_true, y_pred, *, sensitive_features,
                              method="between_groups", sample_weight=None, agg="worst_case"):
    """The groups' true-positive-rate and false-positive-rate gaps, combined.

    Each gap is the spread of that rate over the groups (any number of
    groups); 0 = equalized odds. fairlearn's
    ``fairlearn.metrics.equalized_odds_difference`` when it is installed;
    otherwise the same quantity computed here.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels; the positive label is 1.
    y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like of shape (n_samples,) or (n_samples, n_columns)
        Several columns make intersectional groups.
    method : {"between_groups", "to_overall"}, default="between_groups"
        As for :func:`demographic_parity_difference`, per rate.
    sample_weight : array-like of shape (n_samples,), default=None
    agg : {"worst_case", "mean"}, default="worst_case"
        fairlearn's: the larger of the two gaps, or their mean.

    Returns
    -------
    gap : float

    Examples
    --------
    >>> from skinfluence.metrics import equalized_odds_difference
    >>> equalized_odds_difference([1, 1, 0, 0, 1, 1, 0, 0], [1, 1, 0, 0, 1, 0, 1, 0],
    ...                           sensitive_features=[0, 0, 0, 0, 1, 1, 1, 1])
    0.5
    >>> equalized_odds_difference([1, 1, 0, 0, 1, 1, 0, 0], [1, 1, 0, 0, 1, 0, 1, 0],
    ...                           sensitive_features=[0, 0, 0, 0, 1, 1, 1, 1], agg="mean")
    0.5
    """
    _check_method(method)
    if not (isinstance(agg, str) and agg in ("worst_case", "mean")):
        raise ValueError(f"agg must be 'worst_case' or 'mean', got {agg!r}.")
    y_true = column_or_1d(np.asarray(y_true), warn=True)
    y_pred, s, w = _rate_inputs(y_pred, sensitive_features, sample_weight, 1, y_true)
    try:
        from fairlearn.metrics import equalized_odds_difference as fl_eod
    except ImportError:
        hit, positive = (y_pred == 1).astype(float), y_true == 1
        gaps = [_group_rate_gap(hit, rows, s, w, method) for rows in (positive, ~positive)]
        return float(max(gaps) if agg == "worst_case" else np.mean(gaps))
    extra = {} if agg == "worst_case" else {"agg": agg}  # older fairlearn has no agg=
    return float(fl_eod(y_true, y_pred, sensitive_features=sensitive_features, method=method,
                        sample_weight=sample_weight, **extra))


def fairness_report(y_true, y_pred, *, sensitive_features, pos_label=1, as_metric_frame=False):
    """Per-group table of counts and rates, as fairlearn's ``MetricFrame.by_group``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Labels of any type; with string labels give ``pos_label``.
    sensitive_features : array-like of shape (n_samples,)
        The group of each row. Missing groups (None, NaN) are refused, not
        dropped: every row must belong to a group.
    pos_label : label, default=1
        The positive label. It must be one of the labels of ``y_true`` /
        ``y_pred`` (else every rate would be 0); only when a single label
        of the same type occurs (e.g. all 0) may it be absent.
    as_metric_frame : bool, default=False
        Return fairlearn's ``MetricFrame`` of the same five metrics instead
        (needs fairlearn): ``.by_group``, ``.difference()``, ``.overall``...

    Returns
    -------
    report : pandas.DataFrame or fairlearn.metrics.MetricFrame
        One row per group (index: the group), columns ``count``,
        ``selection_rate``, ``true_positive_rate``, ``false_positive_rate``
        and ``accuracy``. ``report.max() - report.min()`` gives each rate's
        gap; the demographic-parity difference is that of ``selection_rate``,
        the equalized-odds difference the larger of the two positive rates'.

    Examples
    --------
    >>> from skinfluence.metrics import fairness_report
    >>> fairness_report([1, 0, 1, 0], [1, 0, 1, 1], sensitive_features=["a", "a", "b", "b"])
           count  selection_rate  true_positive_rate  false_positive_rate  accuracy
    group
    a          2             0.5                 1.0                  0.0       1.0
    b          2             1.0                 1.0                  1.0       0.5
    """
    import pandas as pd

    y_true = column_or_1d(np.asarray(y_true), warn=True)
    y_pred, s, _ = _rate_inputs(y_pred, sensitive_features, None, pos_label, y_true)
    if as_metric_frame:
        return _metric_frame(y_true, y_pred, sensitive_features, pos_label)
    hit, positive = y_pred == pos_label, y_true == pos_label
    rows = []
    for g in np.unique(s):
        in_g = s == g
        rows.append({
            "group": g.item() if hasattr(g, "item") else g,
            "count": int(in_g.sum()),
            "selection_rate": float(hit[in_g].mean()),
            "true_positive_rate": float(hit[in_g & positive].mean())
            if np.any(in_g & positive) else np.nan,
            "false_positive_rate": float(hit[in_g & ~positive].mean())
            if np.any(in_g & ~positive) else np.nan,
            "accuracy": float(np.mean(y_pred[in_g] == y_true[in_g])),
        })
    return pd.DataFrame(rows).set_index("group")


def _metric_frame(y_true, y_pred, sensitive_features, pos_label):
    """fairlearn's MetricFrame of the report's five metrics."""
    from functools import partial

    try:
        from fairlearn.metrics import (MetricFrame, count, false_positive_rate, selection_rate,
                                       true_positive_rate)
    except ImportError:
        raise ImportError("as_metric_frame=True needs fairlearn: pip install "
                          "'skinfluence[fairness]'.") from None
    from sklearn.metrics import accuracy_score

    metrics = {"count": count,
               "selection_rate": partial(selection_rate, pos_label=pos_label),
               "true_positive_rate": partial(true_positive_rate, pos_label=pos_label),
               "false_positive_rate": partial(false_positive_rate, pos_label=pos_label),
               "accuracy": accuracy_score}
    return MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred,
                       sensitive_features=sensitive_features)
