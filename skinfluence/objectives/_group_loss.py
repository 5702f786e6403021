"""Group-fairness objectives for real-valued predictions and for per-group losses.

- :class:`MeanPredictionGap`: the regression counterpart of demographic
  parity, the gap between groups' mean predictions;
- :class:`BoundedGroupLoss`: fairlearn's bounded group loss as an objective,
  the worst group's mean loss (or the groups' excess over a bound).

Both write ``J = sum_j coef_j * phi(f_j)`` (:class:`ObjectiveTerms`): phi the
prediction (``kind="prediction"``) or the model's own loss, with the groups
that set the gap or the worst loss frozen at the fitted model (as the
classification gaps are).
"""
import numbers

import numpy as np

from ..utils._compat import Interval
from ..models.base import ObjectiveTerms
from ._fairness import _GroupFairness


class MeanPredictionGap(_GroupFairness):
    """Gap between the groups' mean predictions of a regressor.

    Two groups: ``J = mean_{s=1} f(x) - mean_{s=0} f(x)`` (group ``s=1`` the
    larger of the two sorted values). ``absolute=True``: the largest gap
    between any two groups, ``J = max_a mean_a f - min_b mean_b f``, the pair
    frozen at the fitted model (for two groups, ``|gap|``). It is the
    regression form of demographic parity (fairlearn's
    ``demographic_parity_difference`` of a real-valued prediction); it does
    not read the validation targets.

    Parameters
    ----------
    sensitive_feature : int, str or None, default=None
        Column of ``X_val`` holding the sensitive attribute, or None to pass
        ``sensitive_features_val``.
    absolute : bool, default=True
        Reduce the gap whichever group is favoured. False (two groups only):
        the signed gap.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skinfluence import MeanPredictionGap, influence_scores
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 3))
    >>> y = X[:, 0] + 2 * (X[:, 1] > 0) + rng.normal(scale=0.1, size=100)
    >>> s = (X[:, 1] > 0).astype(int)
    >>> scores = influence_scores(Ridge().fit(X, y), X, y, X, y,
    ...                           objective=MeanPredictionGap(), sensitive_features_val=s)
    >>> scores.shape
    (100,)
    """

    shorthand = "mean_prediction_gap"
    _parameter_constraints = {**_GroupFairness._parameter_constraints, "absolute": ["boolean"]}

    def __init__(self, sensitive_feature=None, absolute=True):
        self.sensitive_feature = sensitive_feature
        self.absolute = absolute

    def terms(self, adapter, X_val, y_val, sensitive_features=None):
        if not getattr(adapter, "is_regressor", False):
            raise TypeError(
                "MeanPredictionGap compares a regressor's mean predictions; for a classifier "
                "use DemographicParity (the gap of the predicted probability)."
            )
        X, y, groups, g = self._groups(adapter, X_val, y_val, sensitive_features)
        if not self.absolute and len(groups) != 2:
            raise ValueError(
                f"MeanPredictionGap(absolute=False) needs a binary sensitive feature; got "
                f"{len(groups)} distinct values. Use absolute=True for the largest gap."
            )
        f = np.asarray(adapter.predict(X), dtype=np.float64)
        rows = np.ones(len(g), dtype=bool)
        coef = self._rate_gap_coef(f, g, rows, len(groups), signed=not self.absolute)
        return ObjectiveTerms(X, y, coef, "prediction")


class BoundedGroupLoss(_GroupFairness):
    """The worst group's mean validation loss (fairlearn's bounded group loss).

    ``upper_bound=None``: ``J = max_a L_a`` with ``L_a`` group a's mean loss
    (the model's own: half squared error for a regressor, log-loss for a
    classifier) and the worst group frozen at the fitted model. With a bound:
    ``J = sum_a max(L_a - upper_bound, 0)``, the excess of the groups above
    it (fairlearn's ``BoundedGroupLoss`` constraint ``L_a <= upper_bound``),
    the violating groups frozen; when no group exceeds the bound J is 0 and
    every score is 0. It reads the validation targets.

    Parameters
    ----------
    sensitive_feature : int, str or None, default=None
        Column of ``X_val`` holding the sensitive attribute, or None to pass
        ``sensitive_features_val``.
    upper_bound : float or None, default=None
        The bound on each group's mean loss, in the loss's units.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skinfluence import BoundedGroupLoss, influence_scores
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(100, 3))
    >>> s = (X[:, 1] > 0).astype(int)
    >>> y = X[:, 0] + rng.normal(scale=0.1 + s, size=100)  # group 1 is noisier
    >>> scores = influence_scores(Ridge().fit(X, y), X, y, X, y,
    ...                           objective=BoundedGroupLoss(), sensitive_features_val=s)
    >>> scores.shape
    (100,)
    """

    shorthand = "bounded_group_loss"
    label_loss = True  # the group losses read the validation targets
    _parameter_constraints = {**_GroupFairness._parameter_constraints,
                              "upper_bound": [Interval(numbers.Real, 0, None, closed="left"),
                                              None]}

    def __init__(self, sensitive_feature=None, upper_bound=None):
        self.sensitive_feature = sensitive_feature
        self.upper_bound = upper_bound

    def terms(self, adapter, X_val, y_val, sensitive_features=None):
        if self.upper_bound is not None and not (
                isinstance(self.upper_bound, numbers.Real) and self.upper_bound >= 0):
            raise ValueError(f"upper_bound must be a number >= 0 or None, got "
                             f"{self.upper_bound!r}.")
        X, y, groups, g = self._groups(adapter, X_val, y_val, sensitive_features)
        unit = ObjectiveTerms(X, y, np.ones(len(y)), "loss")
        losses = np.array([adapter.objective_value(_rows(unit, g == k))
                           for k in range(len(groups))]) / np.bincount(g, minlength=len(groups))
        if self.upper_bound is None:
            chosen = [int(np.argmax(losses))]
        else:
            chosen = np.flatnonzero(losses > self.upper_bound).tolist()
        coef = np.zeros(len(y))
        for k in chosen:
            coef[g == k] = 1.0 / np.sum(g == k)
        return ObjectiveTerms(X, y, coef, "loss")


def _rows(terms, mask):
    idx = np.flatnonzero(mask)
    return ObjectiveTerms(terms.X[idx], terms.y[idx], terms.coef[idx], terms.kind)
