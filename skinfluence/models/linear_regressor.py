"""Adapter for fitted scikit-learn squared-error linear regressors.

The linear adapter with the half squared error as its loss object
(:class:`~skinfluence.models._loss.HalfSquaredError`): every pass, Hessian and
NewtonLOO closed form is the classifier's, read through the loss. Only what a
real-valued target changes lives here: the training objective's constants,
target validation, the prediction objective and the budgeted attack.

Training objective in sum form (``r_i = x_i.w + b - y_i``)::

    F(theta) = sum_i c_i * 0.5 r_i^2 + 0.5 * lam * ||w||^2      (b not penalised)

- ``LinearRegression``: ``sum sw_i r_i^2`` -> ``c_i = sw_i``, ``lam = 0``;
- ``Ridge``: ``sum sw_i r_i^2 + alpha ||w||^2`` -> ``c_i = sw_i``, ``lam = alpha``
  (its centring of the data is the same as an unpenalised intercept);
- ``SGDRegressor(loss="squared_error")``: ``mean sw_i 0.5 r_i^2 + alpha R(w)``
  -> ``c_i = sw_i / n``, ``lam = alpha (1 - l1_ratio)`` (l2 / elasticnet), 0 for l1.

A common factor of F does not change any score (they are in mean form).
"""
import numpy as np
from sklearn.linear_model import LinearRegression, Ridge, SGDRegressor
from sklearn.utils.validation import check_is_fitted

from ..utils._validation import check_real_targets
from ._loss import HalfSquaredError
from .linear import LinearModelAdapter
from ._linear_attack import _unit_rows

SUPPORTED_REGRESSORS = ("LinearRegression", "Ridge", "SGDRegressor(loss='squared_error')")


def is_linear_regressor(estimator):
    """Whether ``estimator`` is a squared-error linear regressor this module reads."""
    return isinstance(estimator, (LinearRegression, Ridge, SGDRegressor))


class LinearRegressorAdapter(LinearModelAdapter):
    """Differentiable view of a fitted squared-error linear regressor.

    Parameters
    ----------
    estimator : LinearRegression, Ridge or SGDRegressor(loss="squared_error"), fitted
        Read only; never modified. One target (1-D ``y``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skinfluence.models import make_adapter
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> a = make_adapter(Ridge(alpha=1.0).fit(X, [0.0, 1.0, 1.5, 3.5]))
    >>> type(a).__name__, a.n_params, a.classes_ is None
    ('LinearRegressorAdapter', 2, True)
    """

    family = "linear regressor"
    is_regressor = True
    supports_dask = False  # the Dask wrapper reads classes (class weights, label counts)

    def __init__(self, estimator):  # noqa: D107 - the classifier's checks do not apply
        if not is_linear_regressor(estimator):
            raise TypeError(f"{type(estimator).__name__} is not one of "
                            f"{', '.join(SUPPORTED_REGRESSORS)}.")
        if isinstance(estimator, SGDRegressor) and estimator.loss != "squared_error":
            raise TypeError(
                f"SGDRegressor(loss={estimator.loss!r}) is not supported; only "
                "loss='squared_error' has the smooth per-sample loss influence differentiates."
            )
        if getattr(estimator, "positive", False):
            raise TypeError(
                f"{type(estimator).__name__}(positive=True) solves a constrained problem whose "
                "optimum is not a stationary point of its objective; fit it with positive=False."
            )
        check_is_fitted(estimator, "coef_")
        coef = np.asarray(estimator.coef_, dtype=np.float64)
        if coef.ndim != 1:
            raise ValueError(
                f"The {type(estimator).__name__} was fitted on {coef.shape[0]} targets; "
                "influence is computed for one target (1-D y): fit one model per target."
            )
        self.estimator = estimator
        self.classes_ = None
        self.multinomial = False
        self.n_outputs, self.n_features = 1, coef.size
        self.fit_intercept = bool(estimator.fit_intercept)
        self.n_columns = self.n_features + int(self.fit_intercept)
        blocks = [coef.reshape(1, -1)]
        if self.fit_intercept:
            blocks.append(np.asarray(estimator.intercept_, dtype=np.float64).reshape(1, 1))
        self.theta = np.hstack(blocks).ravel()
        self.n_params = self.theta.size
        self._c, self._lam = self._objective_constants(estimator)
        self.loss = HalfSquaredError()

    @staticmethod
    def _objective_constants(est):
        """(multiplier of sw_i, l2 coefficient) of the regressor's training objective."""
        if isinstance(est, SGDRegressor):
            if est.penalty is None or est.penalty == "l1":
                return "mean", 0.0
            l1_ratio = 0.0 if est.penalty == "l2" else float(est.l1_ratio)
            return "mean", float(est.alpha) * (1.0 - l1_ratio)
        if isinstance(est, Ridge):
            alpha = np.ravel(np.asarray(est.alpha, dtype=np.float64))
            if alpha.size != 1:
                raise ValueError(f"Ridge(alpha=...) must be one number, got {alpha.size}.")
            return 1.0, float(alpha[0])
        return 1.0, 0.0  # LinearRegression: least squares, damping only if singular

    def encode(self, y, *, name, n):
        """Validated real targets (float64, finite, length ``n``); no class lookup."""
        return check_real_targets(y, name, n)

    def predict(self, X, theta=None):
        """Predictions (n,) at ``theta`` (default: the fitted parameters)."""
        return self.logits(self.theta if theta is None else theta, X)[:, 0]

    def predict_proba(self, X, theta=None):
        raise TypeError("A regressor has no class probabilities; objectives built on "
                        "predicted probabilities (kind='proba') do not apply.")

    def _phi_derivatives(self, terms, F):
        """Value, gradient and Hessian in the output of phi: the loss, or the prediction."""
        if terms.kind == "loss":
            return (self.loss.value(F, terms.y), F - self.loss.targets(terms.y),
                    self.loss.curvature(F))
        if terms.kind == "prediction":
            n = F.shape[0]
            return F[:, 0], np.ones((n, 1)), np.zeros((n, 1, 1))
        raise ValueError(f"A regressor has no objective term of kind {terms.kind!r}; "
                         "expected 'loss' or 'prediction'.")

    def attack(self, X, y, objective):
        """Worst-case copy of the validation rows in the ``objective.norm`` ball."""
        if objective.norm is None:
            raise ValueError(
                "AdversarialRobustness(norm=None) is the transferred attack across a "
                "classifier's decision boundary; a regressor has none: use norm='l2' or 'linf'."
            )
        return self.budgeted_attack(X, y, objective.epsilon, objective.norm)

    def budgeted_attack(self, X, y, epsilon, norm):
        """Loss-maximising point of ``||delta|| <= epsilon``: exact, in closed form.

        ``0.5 (r + delta.w)^2`` with ``r = f(x) - y`` is largest at
        ``delta* = epsilon * sign(r) * u(w)`` (u(w) = w / ||w||_2 for l2, sign(w)
        for linf), where it is ``0.5 (|r| + epsilon ||w||_dual)^2`` (dual norm:
        l2 -> l2, linf -> l1). At r = 0 both signs are maxima; + is taken.
        """
        X = X.toarray() if hasattr(X, "toarray") else np.array(X, dtype=np.float64)
        W, _ = self._split(self.theta)
        r = self.predict(X) - y
        s = np.where(r >= 0, 1.0, -1.0)
        return X + epsilon * s[:, None] * _unit_rows(W, norm)
