"""Demographic-parity scorers for ``GridSearchCV``: the attribute from a column of X or routed."""
import numbers

import numpy as np
from sklearn import config_context
from sklearn.metrics import make_scorer

from ._fairness import demographic_parity_difference


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
