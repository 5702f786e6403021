"""A test-only model family: scikit-learn's ``LinearSVC(loss="squared_hinge")``.

It shows that a new family is one module: a ``ModelAdapter`` subclass,
registered with ``register_adapter``; methods and objectives are untouched.

Binary only. With ``s_i = +-1`` and ``f_i = a_i . theta`` (``a_i = [x_i, 1]``
when the model fits an intercept), the per-sample loss is the squared hinge
``l_i = max(0, 1 - s_i f_i)^2`` (differentiable; its second derivative
``2 [s_i f_i < 1]`` is piecewise constant), and liblinear's primal objective is

    F(theta) = 0.5 ||theta||^2 + C sum_i sw_i l_i

(the intercept is penalised too, as liblinear does with intercept_scaling=1),
so ``c_i = C sw_i``. The objective's "loss" terms are this squared hinge: the
family has no probabilities, so "proba" terms are refused.
"""
import numpy as np
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_array, check_is_fitted

from skinfluence.models.base import ModelAdapter, TrainingData


def is_squared_hinge_svm(estimator):
    return isinstance(estimator, LinearSVC) and estimator.loss == "squared_hinge"


class SquaredHingeSVMAdapter(ModelAdapter):
    """Differentiable view of a fitted binary ``LinearSVC(loss="squared_hinge")``."""

    family = "squared_hinge_svm"
    convex = True

    def __init__(self, estimator, *, device="auto"):
        check_is_fitted(estimator, "coef_")
        if len(estimator.classes_) != 2 or estimator.penalty != "l2" or (
                estimator.fit_intercept and estimator.intercept_scaling != 1):
            raise TypeError("binary LinearSVC with penalty='l2', intercept_scaling=1 only.")
        self.classes_ = estimator.classes_
        self.C = float(estimator.C)
        self.fit_intercept = bool(estimator.fit_intercept)
        w = np.asarray(estimator.coef_, dtype=np.float64).ravel()
        self.theta = np.r_[w, estimator.intercept_] if self.fit_intercept else w.copy()
        self.n_params = self.theta.size

    # ------------------------------------------------------------------ data
    def check_X(self, X, name):
        X = check_array(X, dtype=np.float64, input_name=name)
        if X.shape[1] != self.n_params - self.fit_intercept:
            raise ValueError(f"{name} has {X.shape[1]} features, the model "
                             f"{self.n_params - self.fit_intercept}.")
        return X

    def encode(self, y, *, name, n):
        y = np.asarray(y)
        if y.shape != (n,) or not np.isin(y, self.classes_).all():
            raise ValueError(f"{name} must hold {n} labels among {list(self.classes_)}.")
        return (y == self.classes_[1]).astype(np.intp)

    def training_data(self, X, y, sample_weight=None, *, name="X"):
        X = self.check_X(X, name)
        sw = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
        return TrainingData(X, self.encode(y, name="y", n=X.shape[0]), self.C * sw)

    # ------------------------------------------------------------------ the loss
    def _pieces(self, theta, X, y_idx):
        """Design rows A, losses l_i, r_i (grad l_i = r_i a_i) and the active set."""
        theta = self.theta if theta is None else theta
        A = np.hstack([X, np.ones((X.shape[0], 1))]) if self.fit_intercept else X
        s = 2.0 * y_idx - 1.0
        h = np.maximum(0.0, 1.0 - s * (A @ theta))
        return A, h ** 2, -2.0 * s * h, h > 0

    def _check_kind(self, terms):
        if terms.kind != "loss":
            raise TypeError("a squared-hinge SVM has no probabilities: 'loss' terms only.")

    def objective_value(self, terms, theta=None):
        self._check_kind(terms)
        return float(terms.coef @ self._pieces(theta, terms.X, terms.y)[1])

    def objective_gradient(self, terms, theta=None):
        self._check_kind(terms)
        A, _, r, _ = self._pieces(theta, terms.X, terms.y)
        return A.T @ (terms.coef * r)

    # ------------------------------------------------------------------ curvature
    def hessian(self, train, indices=None, sample_weights=None, theta=None, batch_size=4096):
        if indices is not None or sample_weights is not None:
            raise TypeError("this test adapter builds the full Hessian only.")
        A, _, _, active = self._pieces(theta, train.X, train.y)
        H = 2.0 * (A * (train.weight * active)[:, None]).T @ A + np.eye(self.n_params)
        return H / train.weight.sum()

    def hvp(self, train, vec, theta=None, batch_size=4096, indices=None, sample_weights=None):
        return self.hessian(train, indices, sample_weights, theta) @ vec

    # ------------------------------------------------------------------ the pass
    def score_pass(self, train, thetas, directions, *, batch_size, progress=None):
        rel = train.relative_weight
        out = np.empty((train.n, len(thetas)))
        for m, (theta, v) in enumerate(zip(thetas, directions)):
            for start in range(0, train.n, batch_size):
                rows = slice(start, start + batch_size)
                A, _, r, _ = self._pieces(theta, train.X[rows], train.y[rows])
                out[rows, m] = rel[rows] * r * (A @ v)
        return out
