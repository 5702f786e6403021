"""Group-fairness objectives on classifiers: demographic parity and equalized odds."""
import numbers

import numpy as np

from ..utils._compat import StrOptions
from ..utils._validation import check_groups, column_values
from ..models.base import ObjectiveTerms
from ._base import Objective


class _GroupFairness(Objective):
    """Shared parts of the group-fairness objectives: the attribute and the positive class.

    Fairness gaps compare rates between groups, so the trusted-row filter of
    cross-fitting (which keeps only rows the fold's model predicts right)
    would bias every rate: ``label_loss = False``.
    """

    label_loss = False
    needs_sensitive = True
    _parameter_constraints = {"sensitive_feature": [str, numbers.Integral, None]}

    def sensitive_values(self, X_val, sensitive_features):
        """The sensitive attribute of the validation rows, from the argument or a column."""
        if sensitive_features is not None:
            return np.asarray(sensitive_features).ravel()
        col = self.sensitive_feature
        if col is None:
            raise ValueError(
                f"{type(self).__name__} needs the sensitive attribute: pass "
                f"sensitive_features_val=... or set {type(self).__name__}"
                "(sensitive_feature=column)."
            )
        return column_values(X_val, col, "X_val")

    def _setup(self, adapter, X_val, y_val, sensitive_features):
        """Validated (X, y indices, groups, group of each row, P(positive class))."""
        X, y, groups, g = self._groups(adapter, X_val, y_val, sensitive_features)
        pos = self._positive_index(adapter)
        p = np.asarray(adapter.predict_proba(X))[:, pos]
        return X, y, groups, g, pos, p

    def _groups(self, adapter, X_val, y_val, sensitive_features):
        """Validated (X, y, groups, group of each row)."""
        s = self.sensitive_values(X_val, sensitive_features)
        X = adapter.check_X(X_val, "X_val")
        y = adapter.encode(y_val, name="y_val", n=X.shape[0])
        if len(s) != X.shape[0]:
            raise ValueError(
                f"sensitive_features_val has {len(s)} values, X_val has {X.shape[0]} rows."
            )
        s = check_groups(s, "sensitive_features_val" if sensitive_features is not None
                         else f"the sensitive feature {self.sensitive_feature!r} of X_val")
        groups, g = np.unique(s, return_inverse=True)
        if len(groups) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 groups in the sensitive feature; "
                f"got {len(groups)}: {groups.tolist()}."
            )
        return X, y, groups, g.ravel()

    def _rate_gap_coef(self, p, g, rows, n_groups, signed):
        """Coefficients of ``mean_a p - mean_b p`` over ``rows`` for the gap to reduce.

        Binary and ``signed``: a = the larger sorted group, b = the other. Else
        a, b = the groups of the largest and smallest soft rate at theta (the
        largest gap between any two groups; the sign is frozen there).
        """
        coef = np.zeros(len(p))
        present = [k for k in range(n_groups) if np.any(rows & (g == k))]
        if len(present) < 2:  # the rate cannot differ between groups here
            return coef
        if signed:
            a, b = present[-1], present[0]
        else:
            rates = {k: p[rows & (g == k)].mean() for k in present}
            a, b = max(rates, key=rates.get), min(rates, key=rates.get)
        in_a, in_b = rows & (g == a), rows & (g == b)
        coef[in_a] = 1.0 / in_a.sum()
        coef[in_b] = -1.0 / in_b.sum()
        return coef

    def _positive_index(self, adapter):
        classes = list(adapter.classes_)
        if self.positive_class is None:
            if len(classes) > 2:
                raise ValueError(
                    f"{type(self).__name__} on a multiclass model needs positive_class= "
                    f"(one of {classes})."
                )
            return 1
        if self.positive_class not in classes:
            raise ValueError(f"positive_class={self.positive_class!r} is not in {classes}.")
        return classes.index(self.positive_class)


class DemographicParity(_GroupFairness):
    """Demographic-parity gap of the predicted positive-class probability.

    Two groups: ``J = mean_{s=1} p(x) - mean_{s=0} p(x)`` with p the (soft,
    differentiable) predicted probability of the positive class; group
    ``s=1`` is the larger of the two sorted values of the sensitive feature.
    More groups (``absolute=True`` only): the largest gap between any two
    groups, ``J = max_a mean_a p - min_b mean_b p``, differentiated with the
    pair (a, b) frozen at the fitted model. When two pairs are almost as far
    apart, the scores reduce only the largest; re-scoring in rounds
    (``target_gap=`` of the estimators) moves on to the next one.

    Parameters
    ----------
    sensitive_feature : int, str or None, default=None
        Column of ``X_val`` holding the sensitive attribute (index, or name for
        a pandas DataFrame). ``None``: pass ``sensitive_features_val`` instead.
    absolute : bool, default=True
        Use ``|J|`` with the sign frozen at the fitted model, so the scores
        measure reducing the gap whichever group is favoured. False (two
        groups only): the signed gap.
    positive_class : label or None, default=None
        The class whose rate is compared. Binary models: the second class of
        ``classes_`` when None. Multiclass models: required.

    Examples
    --------
    >>> from skinfluence import DemographicParity
    >>> DemographicParity(sensitive_feature=0)
    DemographicParity(sensitive_feature=0)
    """

    shorthand = "demographic_parity"
    gap_kind = "demographic_parity"  # the hard-prediction metric (skinfluence.metrics)
    _parameter_constraints = {**_GroupFairness._parameter_constraints, "absolute": ["boolean"]}

    def __init__(self, sensitive_feature=None, absolute=True, positive_class=None):
        self.sensitive_feature = sensitive_feature
        self.absolute = absolute
        self.positive_class = positive_class

    def terms(self, adapter, X_val, y_val, sensitive_features=None):
        X, y, groups, g, pos, p = self._setup(adapter, X_val, y_val, sensitive_features)
        if not self.absolute and len(groups) != 2:
            raise ValueError(
                f"DemographicParity(absolute=False) needs a binary sensitive feature; got "
                f"{len(groups)} distinct values: {groups[:10].tolist()}. Use absolute=True "
                "for the largest gap between any two groups."
            )
        rows = np.ones(len(g), dtype=bool)
        return ObjectiveTerms(X, y, self._rate_gap_coef(p, g, rows, len(groups),
                                                        signed=not self.absolute), "proba", pos)


class EqualizedOdds(_GroupFairness):
    """Equalized-odds gap: the groups' true- and false-positive rates, soft.

    With p the predicted probability of the positive class, the soft
    true-positive rate of group a is ``TPR_a = mean_{s=a, y=pos} p(x)`` and
    its false-positive rate ``FPR_a = mean_{s=a, y!=pos} p(x)``. The gap of
    each rate is the largest difference between any two groups
    (``max_a R_a - min_b R_b``, the pair frozen at the fitted model, which
    for two groups is the absolute difference), and

    - ``combine="sum"``: ``J = TPR gap + FPR gap``, an upper bound of the
      hard metric's worst case whose reduction lowers both rates' gaps;
    - ``combine="max"``: ``J`` = the larger of the two at the fitted model
      (fairlearn's ``equalized_odds_difference``, ``agg="worst_case"``).

    Unlike demographic parity it reads the validation labels.

    Parameters
    ----------
    sensitive_feature : int, str or None, default=None
        Column of ``X_val`` holding the sensitive attribute, or None to pass
        ``sensitive_features_val``.
    combine : {"sum", "max"}, default="sum"
        How the two rates' gaps make one objective.
    positive_class : label or None, default=None
        As for :class:`DemographicParity`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import EqualizedOdds, influence_scores
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> s = (X[:, 1] > 0).astype(int)
    >>> model = LogisticRegression().fit(X, y)
    >>> scores = influence_scores(model, X, y, X, y, objective=EqualizedOdds(),
    ...                           sensitive_features_val=s)
    >>> scores.shape
    (200,)
    """

    shorthand = "equalized_odds"
    gap_kind = "equalized_odds"
    _parameter_constraints = {**_GroupFairness._parameter_constraints,
                              "combine": [StrOptions({"sum", "max"})]}

    def __init__(self, sensitive_feature=None, combine="sum", positive_class=None):
        self.sensitive_feature = sensitive_feature
        self.combine = combine
        self.positive_class = positive_class

    def terms(self, adapter, X_val, y_val, sensitive_features=None):
        if self.combine not in ("sum", "max"):
            raise ValueError(f"combine must be 'sum' or 'max', got {self.combine!r}.")
        X, y, groups, g, pos, p = self._setup(adapter, X_val, y_val, sensitive_features)
        label_pos = np.asarray(y) == pos
        tpr = self._rate_gap_coef(p, g, label_pos, len(groups), signed=False)
        fpr = self._rate_gap_coef(p, g, ~label_pos, len(groups), signed=False)
        if self.combine == "sum":
            coef = tpr + fpr
        else:
            coef = tpr if tpr @ p >= fpr @ p else fpr
        return ObjectiveTerms(X, y, coef, "proba", pos)
