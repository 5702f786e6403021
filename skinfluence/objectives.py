"""Objectives J(V; theta): what the influence is measured against.

Every objective is a loss (lower is better). Each one turns the validation data
into :class:`ObjectiveTerms` — ``J = sum_j coef_j * phi(f_j)`` with phi either
the log-loss or the predicted probability of one class — and the model's
adapter differentiates that. So an objective never knows a model family.
"""
import numbers

import numpy as np

from ._params import ParamsObject
from ._compat import Interval, StrOptions
from ._validation import check_groups, column_values
from .models.base import ATTACK_NORMS, ObjectiveTerms


class Objective(ParamsObject):
    """Base class: ``terms(adapter, X_val, y_val, sensitive_features)``.

    ``label_loss``: True when J is a loss on the validation labels, so that
    noisy validation labels would reward fitting noise; cross-fitting then
    scores against the held-out rows the fold's model agrees with
    (``trusted="agree"``). Fairness objectives set it False.
    """

    label_loss = True
    needs_sensitive = False

    def terms(self, adapter, X_val, y_val, sensitive_features=None):  # pragma: no cover
        raise NotImplementedError


class Utility(Objective):
    """Mean log-loss (cross-entropy) on the validation set.

    ``J = mean_{(x, y) in V} l(x, y; theta)``.

    Examples
    --------
    >>> from skinfluence import Utility
    >>> Utility()
    Utility()
    """

    shorthand = "utility"

    def terms(self, adapter, X_val, y_val, sensitive_features=None):
        X = adapter.check_X(X_val, "X_val")
        y = adapter.encode(y_val, name="y_val", n=X.shape[0])
        return ObjectiveTerms(X, y, np.full(X.shape[0], 1.0 / X.shape[0]), "loss")


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


class AdversarialRobustness(Objective):
    """Mean log-loss on an attacked copy V' of the validation set.

    Two kinds of attack, chosen by ``norm``:

    - ``norm="l2"`` or ``"linf"``: the **budgeted worst case**, the adaptive
      attack. Each validation point moves to the loss-maximising point of the
      ball ``||delta|| <= epsilon`` around it, computed against the model being
      scored, so ``J = mean_V max_delta l(x + delta, y; theta)`` is the loss an
      attacker who attacks *this* model inflicts. Binary linear models: closed
      form, ``delta* = -epsilon * s * w / ||w||_2`` (l2) or
      ``-epsilon * s * sign(w)`` (linf), s = +-1 the label. Multinomial linear
      models: the candidate directions ``w_y - w_k`` (k != y) with the same
      formula per pair, keeping per point the one of highest loss (exact when
      one rival class dominates, else a lower bound of the worst case).
      Networks: projected gradient ascent (PGD) within the ball.
      By Danskin's theorem the gradient of this worst-case loss at theta is
      the gradient of the loss at the maximiser, so scoring against the attacked
      set held fixed at the fitted theta is the adaptive objective's own
      first-order influence.
    - ``norm=None`` (default): the attack of Yang et al.'s IP paper (after Megyeri et al.
      2019) on linear models, ``x' = x - gamma * f(x) / ||w||^2 * w``: each point
      is pushed across the boundary of the *fitted* model. It has no budget
      (with gamma > 1 it crosses any model's boundary once recomputed), so it is
      a *transferred* attack: good for defending a deployed model against that
      fixed attacked set, not a measure of robustness to an attacker who
      attacks the defended model. On networks ``norm=None`` is the L-infinity
      ball (FGSM / PGD with ``epsilon``), as ``norm="linf"``.

    The attacked set is built once at the fitted parameters and then held
    fixed, so J is an ordinary loss on fixed data. ``X_attacked`` passes a
    ready-made attacked set instead.

    Parameters
    ----------
    gamma : float, default=1.3
        Strength of the transferred linear attack (``norm=None``; 1 lands on
        the boundary). Unused with a norm.
    epsilon : float, default=0.1
        Radius of the attack ball (in the model's input units; standardise the
        features for a budget that means the same in every direction). Unused
        by the transferred linear attack.
    norm : {"l2", "linf"} or None, default=None
        The ball of the budgeted worst case; None: the transferred gamma attack
        on linear models, the L-infinity ball on networks.
    steps : int, default=10
        PGD steps on networks; 1 is FGSM (one signed / normalised gradient
        step of size epsilon). Linear models need none (closed form).
    X_attacked : array-like or None, default=None
        Attacked validation features supplied by the user (rows match y_val).

    See Also
    --------
    skinfluence.metrics.robust_accuracy : accuracy under the same budgeted attack.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skinfluence import AdversarialRobustness, influence_scores
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> model = LogisticRegression(C=0.1).fit(X[:400], y[:400])
    >>> objective = AdversarialRobustness(epsilon=0.5, norm="l2")
    >>> scores = influence_scores(model, X[:400], y[:400], X[400:], y[400:],
    ...                           objective=objective)
    >>> scores.shape
    (400,)
    """

    shorthand = "adversarial_robustness"
    _parameter_constraints = {
        "gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "norm": [StrOptions({"l2", "linf"}), None],
        "steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "X_attacked": ["array-like", "sparse matrix", None],
    }

    def __init__(self, gamma=1.3, epsilon=0.1, norm=None, steps=10, X_attacked=None):
        self.gamma = gamma
        self.epsilon = epsilon
        self.norm = norm
        self.steps = steps
        self.X_attacked = X_attacked

    def check_params(self):
        """Validate the parameters (called before every attack)."""
        if not (isinstance(self.gamma, numbers.Real) and self.gamma > 0):
            raise ValueError(f"gamma must be a positive number, got {self.gamma!r}.")
        if not (isinstance(self.epsilon, numbers.Real) and self.epsilon > 0):
            raise ValueError(f"epsilon must be a positive number, got {self.epsilon!r}.")
        if self.norm not in ATTACK_NORMS:
            raise ValueError(f"norm must be one of {ATTACK_NORMS}, got {self.norm!r}.")
        if not isinstance(self.steps, numbers.Integral) or self.steps < 1:
            raise ValueError(f"steps must be a positive int (1 = FGSM), got {self.steps!r}.")
        self.validate()  # NaN / infinity and the rest of the constraints

    def terms(self, adapter, X_val, y_val, sensitive_features=None):
        self.check_params()
        X = adapter.check_X(X_val, "X_val")
        y = adapter.encode(y_val, name="y_val", n=X.shape[0])
        if self.X_attacked is not None:
            Xa = adapter.check_X(self.X_attacked, "X_attacked")
            if Xa.shape[0] != X.shape[0]:
                raise ValueError("X_attacked must have as many rows as X_val.")
        else:
            Xa = adapter.attack(X, y, self)
        return ObjectiveTerms(Xa, y, np.full(X.shape[0], 1.0 / X.shape[0]), "loss")


# the regression / group-loss objectives build on _GroupFairness above
from ._group_loss_objectives import BoundedGroupLoss, MeanPredictionGap  # noqa: E402

OBJECTIVES = {c.shorthand: c for c in (Utility, DemographicParity, EqualizedOdds,
                                       AdversarialRobustness, MeanPredictionGap,
                                       BoundedGroupLoss)}
