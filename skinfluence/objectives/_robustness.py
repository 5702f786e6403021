"""The robustness objective: the validation loss under an evasion attack."""
import numbers

import numpy as np

from ..utils._compat import Interval, StrOptions
from ..models.base import ATTACK_NORMS, ObjectiveTerms
from ._base import Objective


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
