"""Fairness and robustness metrics and scorers, for judging and tuning the estimators.

``robust_accuracy`` is the accuracy under the budgeted attack an attacker
computes against the very model being scored (exact for linear models, PGD
for networks); ``robust_accuracy_scorer`` / ``robustness_scoring`` plug it into
``GridSearchCV``.

``demographic_parity_difference`` and ``equalized_odds_difference`` are
fairlearn's when fairlearn is installed and an equivalent otherwise (the gap
between the largest and the smallest group rate, any number of groups);
``fairness_gap`` computes either in numpy; ``fairness_report`` is the
per-group table of fairlearn's ``MetricFrame``. The scorers plug into
``GridSearchCV``: they take the sensitive attribute either from a column of
X (``sensitive_feature=``; works
with or without metadata routing) or, under metadata routing, from
``fit(..., sensitive_features=s)`` routed to the scorer.
"""
import numbers

import numpy as np
from sklearn import config_context
from sklearn.metrics import make_scorer
from sklearn.utils.validation import check_array, column_or_1d

from ._lds import linear_datamodeling_score
from ._validation import (check_binary_pos_label, check_groups, check_labels, check_n_rows,
                          check_sample_weight)

__all__ = [
    "selection_rate_by_group",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "fairness_gap",
    "fairness_report",
    "DemographicParityScorer",
    "demographic_parity_scorer",
    "fairness_scoring",
    "robust_accuracy",
    "RobustAccuracyScorer",
    "robust_accuracy_scorer",
    "robustness_scoring",
    "linear_datamodeling_score",
]


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


class DemographicParityScorer:
    """Scorer ``(estimator, X, y) -> -DP gap`` reading the sensitive attribute from X.

    Greater is better (the negated gap), as ``GridSearchCV`` expects; works
    with or without metadata routing since the attribute travels inside X.

    Parameters
    ----------
    sensitive_feature : str or int
        Column of X (name for a DataFrame, else index).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from skinfluence.metrics import DemographicParityScorer
    >>> X = np.array([[0.0], [0.0], [1.0], [1.0]])
    >>> model = DummyClassifier(strategy="constant", constant=1).fit(X, [1, 0, 1, 0])
    >>> DemographicParityScorer(0)(model, X, [1, 0, 1, 0])
    -0.0
    """

    def __init__(self, sensitive_feature):
        if not isinstance(sensitive_feature, (str, numbers.Integral)):
            raise TypeError(f"sensitive_feature must be a column name or index, got "
                            f"{sensitive_feature!r}.")
        self.sensitive_feature = sensitive_feature

    def __call__(self, estimator, X, y, sample_weight=None):
        col = self.sensitive_feature
        if hasattr(X, "columns"):
            s = np.asarray(X[col] if col in X.columns else X.iloc[:, col]).ravel()
        else:
            arr = X.tocsc()[:, col].toarray() if hasattr(X, "tocsc") else np.asarray(X)[:, col]
            s = np.asarray(arr).ravel()
        gap = demographic_parity_difference(y, estimator.predict(X), sensitive_features=s,
                                            sample_weight=sample_weight)
        return -gap

    def __repr__(self):
        return f"DemographicParityScorer(sensitive_feature={self.sensitive_feature!r})"


def demographic_parity_scorer(sensitive_feature=None):
    """A ``GridSearchCV`` scorer of the negated demographic-parity gap (greater is better).

    Parameters
    ----------
    sensitive_feature : str, int or None, default=None
        A column of X: returns :class:`DemographicParityScorer`. None: a
        ``make_scorer`` scorer that requests ``sensitive_features`` through
        metadata routing (``sklearn.set_config(enable_metadata_routing=True)``
        and ``search.fit(X, y, sensitive_features=s)``).

    Returns
    -------
    scorer : callable

    Examples
    --------
    >>> from skinfluence.metrics import demographic_parity_scorer
    >>> demographic_parity_scorer("sex")
    DemographicParityScorer(sensitive_feature='sex')
    """
    if sensitive_feature is not None:
        return DemographicParityScorer(sensitive_feature)
    scorer = make_scorer(demographic_parity_difference, greater_is_better=False)
    with config_context(enable_metadata_routing=True):
        scorer.set_score_request(sensitive_features=True)
    return scorer


def fairness_scoring(sensitive_feature=None):
    """Multi-metric scoring for ``GridSearchCV``: accuracy and the (negated) DP gap.

    Use with ``refit="accuracy"`` (or a callable choosing the trade-off);
    ``cv_results_`` then has ``mean_test_accuracy`` and ``mean_test_dp_gap``
    (the negated gap: closer to 0 is fairer).

    Parameters
    ----------
    sensitive_feature : str, int or None, default=None
        See :func:`demographic_parity_scorer`.

    Returns
    -------
    scoring : dict

    Examples
    --------
    >>> from skinfluence.metrics import fairness_scoring
    >>> sorted(fairness_scoring(0))
    ['accuracy', 'dp_gap']
    """
    return {"accuracy": "accuracy", "dp_gap": demographic_parity_scorer(sensitive_feature)}


# ---------------------------------------------------------------------- robustness
_DUAL = {"l2": 2, "linf": 1}  # the dual norm's order: ||w||_2 for l2, ||w||_1 for linf


def robust_accuracy(estimator, X, y, *, epsilon, norm="l2", steps=20, sample_weight=None):
    """Accuracy under the worst-case perturbation ``||delta|| <= epsilon`` of each row.

    The attack is computed against ``estimator`` itself (adaptive), not
    transferred from another model.

    - Linear classifiers (anything exposing ``coef_`` / ``intercept_``, also
      inside an ``Influence*`` meta-estimator or a search's ``best_estimator_``):
      **exact**. A row of label y is robustly correct iff, for every other
      class k, ``f_y(x) - f_k(x) > epsilon * ||w_y - w_k||_dual``
      (binary: ``s (w.x + b) > epsilon ||w||_dual``, s = +-1), with the dual
      norm l2 for an l2 ball and l1 for an L-infinity ball: the ball can lower
      a linear margin by exactly that much, and no more.
    - Networks (skorch nets, ``(module, loss)``): ``steps`` of PGD within the
      ball against the net's own loss (:class:`~skinfluence.AdversarialRobustness`'s
      attack); an upper bound of the true robust accuracy, as every attack is.

    Parameters
    ----------
    estimator : fitted classifier
    X : array-like of shape (n_samples, n_features)
        In the estimator's input units (a Pipeline's preprocessing is not
        looked through: pass the final step and the transformed X).
    y : array-like of shape (n_samples,)
    epsilon : float >= 0
        Radius of the ball (0: plain accuracy, ties counted as errors).
    norm : {"l2", "linf"}, default="l2"
    steps : int, default=20
        PGD steps for networks (1: FGSM); unused for linear models.
    sample_weight : array-like of shape (n_samples,), default=None
        Finite, non-negative, not all zero.

    Returns
    -------
    accuracy : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.metrics import robust_accuracy
    >>> X = np.array([[-2.0], [-0.5], [0.5], [2.0]])
    >>> model = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> robust_accuracy(model, X, [0, 0, 1, 1], epsilon=1.0)
    0.5
    """
    _check_budget(epsilon, norm)
    estimator = _final_model(estimator)
    loader = hasattr(X, "dataset") and hasattr(X, "batch_size")  # len: batches, not rows
    n_rows = len(X.dataset) if loader else check_n_rows(X, "X")
    y = check_labels(y, "y", n_rows)
    sample_weight = check_sample_weight(sample_weight, n_rows, positive_sum=True)
    if hasattr(estimator, "coef_"):
        correct = _linear_robust_correct(estimator, X, y, float(epsilon), norm)
    else:
        correct = _attacked_correct(estimator, X, y, float(epsilon), norm, steps)
    return float(np.average(correct, weights=sample_weight))


def _check_budget(epsilon, norm):
    if not (isinstance(epsilon, numbers.Real) and epsilon >= 0):
        raise ValueError(f"epsilon must be a number >= 0, got {epsilon!r}.")
    if norm not in _DUAL:
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}.")


def _final_model(estimator):
    """The fitted model that predicts: through ``estimator_`` / ``best_estimator_``."""
    from .models import _is_torch_model

    if hasattr(estimator, "steps") and hasattr(estimator, "named_steps"):
        raise TypeError(
            "robust_accuracy measures the attack in the final model's input space; for a "
            "Pipeline pass pipeline[-1] and pipeline[:-1].transform(X)."
        )
    while not hasattr(estimator, "coef_") and not _is_torch_model(estimator):
        inner = getattr(estimator, "estimator_", None) or getattr(estimator,
                                                                  "best_estimator_", None)
        if inner is None:
            raise TypeError(
                f"robust_accuracy supports linear classifiers (with coef_), skorch nets and "
                f"(module, loss) pairs, or meta-estimators around them; got "
                f"{type(estimator).__name__}."
            )
        estimator = inner
    return estimator


def _linear_robust_correct(estimator, X, y, epsilon, norm):
    X = check_array(X, accept_sparse=True, dtype=np.float64)
    W = np.asarray(estimator.coef_.toarray() if hasattr(estimator.coef_, "toarray")
                   else estimator.coef_, dtype=np.float64)
    b = np.broadcast_to(np.asarray(getattr(estimator, "intercept_", 0.0), np.float64),
                        (W.shape[0],))
    if X.shape[1] != W.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features, the estimator {W.shape[1]}.")
    classes = np.asarray(estimator.classes_)
    idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    known = classes[idx] == y  # a label the model cannot predict is never correct
    F = np.asarray(X @ W.T) + b
    order = _DUAL[norm]
    if W.shape[0] == 1:  # binary: one logit, the score of classes_[1]
        s = np.where(idx == 1, 1.0, -1.0)
        return known & (s * F[:, 0] > epsilon * np.linalg.norm(W[0], ord=order))
    pair = np.linalg.norm(W[:, None, :] - W[None, :, :], ord=order, axis=2)  # (K, K)
    rows = np.arange(len(y))
    slack = F[rows, idx][:, None] - F - epsilon * pair[idx]
    slack[rows, idx] = np.inf
    return known & (slack > 0).all(axis=1)


def _attacked_correct(estimator, X, y, epsilon, norm, steps):
    from .models import make_adapter
    from .objectives import AdversarialRobustness

    adapter = make_adapter(estimator)
    Xt = adapter.check_X(X, "X")
    classes = np.asarray(adapter.classes_)
    idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    known = classes[idx] == y
    if epsilon > 0:
        attack = AdversarialRobustness(epsilon=epsilon, norm=norm, steps=steps)
        Xt = adapter.attack(Xt, idx, attack)
    return known & (adapter.predict_proba(Xt).argmax(axis=1) == idx)


class RobustAccuracyScorer:
    """Scorer ``(estimator, X, y) -> robust_accuracy(...)`` for ``GridSearchCV``.

    Greater is better. See :func:`robust_accuracy` for the parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.metrics import RobustAccuracyScorer
    >>> X = np.array([[-2.0], [-0.5], [0.5], [2.0]])
    >>> model = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> RobustAccuracyScorer(epsilon=0.25)(model, X, [0, 0, 1, 1])
    1.0
    """

    def __init__(self, epsilon, norm="l2", steps=20):
        _check_budget(epsilon, norm)
        self.epsilon, self.norm, self.steps = epsilon, norm, steps

    def __call__(self, estimator, X, y, sample_weight=None):
        return robust_accuracy(estimator, X, y, epsilon=self.epsilon, norm=self.norm,
                               steps=self.steps, sample_weight=sample_weight)

    def __repr__(self):
        return (f"RobustAccuracyScorer(epsilon={self.epsilon!r}, norm={self.norm!r}, "
                f"steps={self.steps!r})")


def robust_accuracy_scorer(*, epsilon, norm="l2", steps=20):
    """A ``GridSearchCV`` scorer of :func:`robust_accuracy` (greater is better).

    Parameters
    ----------
    epsilon : float >= 0
    norm : {"l2", "linf"}, default="l2"
    steps : int, default=20
        PGD steps for networks.

    Returns
    -------
    scorer : RobustAccuracyScorer

    Examples
    --------
    >>> from skinfluence.metrics import robust_accuracy_scorer
    >>> robust_accuracy_scorer(epsilon=0.5)
    RobustAccuracyScorer(epsilon=0.5, norm='l2', steps=20)
    """
    return RobustAccuracyScorer(epsilon, norm, steps)


def robustness_scoring(*, epsilon, norm="l2", steps=20):
    """Multi-metric scoring for ``GridSearchCV``: clean and robust accuracy.

    Use with ``refit="robust_accuracy"`` (or a callable choosing the
    trade-off); ``cv_results_`` then has ``mean_test_accuracy`` and
    ``mean_test_robust_accuracy``.

    Parameters
    ----------
    epsilon : float >= 0
    norm : {"l2", "linf"}, default="l2"
    steps : int, default=20

    Returns
    -------
    scoring : dict

    Examples
    --------
    >>> from skinfluence.metrics import robustness_scoring
    >>> sorted(robustness_scoring(epsilon=0.5))
    ['accuracy', 'robust_accuracy']
    """
    return {"accuracy": "accuracy",
            "robust_accuracy": robust_accuracy_scorer(epsilon=epsilon, norm=norm, steps=steps)}
