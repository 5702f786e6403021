"""Fairness metrics and scorers, for judging and tuning the estimators.

``demographic_parity_difference`` is fairlearn's when fairlearn is installed
and an equivalent otherwise (the gap between the largest and the smallest
group selection rate). The scorers plug into ``GridSearchCV``: they take the
sensitive attribute either from a column of X (``sensitive_feature=``; works
with or without metadata routing) or, under metadata routing, from
``fit(..., sensitive_features=s)`` routed to the scorer.
"""
import numbers

import numpy as np
from sklearn import config_context
from sklearn.metrics import make_scorer
from sklearn.utils.validation import column_or_1d

__all__ = [
    "selection_rate_by_group",
    "demographic_parity_difference",
    "DemographicParityScorer",
    "demographic_parity_scorer",
    "fairness_scoring",
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
    y_pred = column_or_1d(np.asarray(y_pred), warn=True)
    s = column_or_1d(np.asarray(sensitive_features), warn=True)
    if len(s) != len(y_pred):
        raise ValueError(f"sensitive_features has {len(s)} values, y_pred has {len(y_pred)}.")
    w = np.ones(len(y_pred)) if sample_weight is None else np.asarray(sample_weight, float)
    positive = (y_pred == pos_label).astype(float)
    rates = {}
    for g in np.unique(s):
        in_g = s == g
        rates[g.item() if hasattr(g, "item") else g] = float(
            np.average(positive[in_g], weights=w[in_g]))
    return rates


def demographic_parity_difference(y_true, y_pred, *, sensitive_features, sample_weight=None):
    """Largest minus smallest group selection rate (0 = demographic parity).

    fairlearn's ``fairlearn.metrics.demographic_parity_difference`` when it is
    installed; otherwise the same quantity computed here.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or None
        Unused by the gap (kept for the metric signature).
    y_pred : array-like of shape (n_samples,)
        Predicted labels; the positive label is 1.
    sensitive_features : array-like of shape (n_samples,)
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
    """
    try:
        from fairlearn.metrics import demographic_parity_difference as fl_dpd
    except ImportError:
        rates = selection_rate_by_group(y_pred, sensitive_features, sample_weight=sample_weight)
        return float(max(rates.values()) - min(rates.values()))
    if y_true is None:
        y_true = y_pred
    return float(fl_dpd(y_true, y_pred, sensitive_features=sensitive_features,
                        sample_weight=sample_weight))


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
