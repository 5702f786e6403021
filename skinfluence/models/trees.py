"""Adapter for fitted gradient-boosted trees: scikit-learn, LightGBM and XGBoost.

A boosted model's raw margin is ``F(x) = F_0 + sum_t v_t(x)``: an initial
score and, each round t, the value of the leaf x falls in (one tree per round,
or one per class for a K-class softmax). With the trees' structure held fixed,
each leaf value is one Newton step on the training rows that reach it::

    v_tj = -eta * G_tj / (H_tj + lambda),   G_tj = sum_{i in leaf} c_i g_i,
                                            H_tj = sum_{i in leaf} c_i h_i,

with ``g_i, h_i`` the first and second derivatives of row i's loss at the
previous round's margin, ``eta`` the learning rate, ``lambda`` the L2 term
(LightGBM adds ``cat_l2`` in the leaves a many-vs-many categorical split made:
each leaf's term is read off its stored value among the two) and ``c_i`` the
sample weight. The influence methods
(:mod:`skinfluence.methods._rounds`) differentiate this recursion; this module
reads the model (:mod:`skinfluence.models._tree_readers`), holds the loss and
checks that the model is that recursion: a setting that breaks it (row
subsampling, L1, ``max_delta_step``, an early-stopping hold-out...) is refused
by name, and the scoring pass recomputes every leaf from the rows and compares
(:func:`check_leaf_values`).

Supported: ``HistGradientBoostingClassifier`` (log-loss) and
``HistGradientBoostingRegressor`` (squared error); LightGBM's
``LGBMClassifier`` / ``LGBMRegressor`` (``objective`` binary, multiclass,
regression); XGBoost's ``XGBClassifier`` / ``XGBRegressor``
(``binary:logistic``, ``multi:softprob``, ``reg:squarederror``). LightGBM and
XGBoost are optional (the ``lightgbm`` / ``xgboost`` extras).

Examples
--------
>>> import numpy as np
>>> from sklearn.ensemble import HistGradientBoostingClassifier
>>> from skinfluence import influence_scores
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 3))
>>> y = (X[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)
>>> model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
>>> influence_scores(model, X, y, X[:50], y[:50]).shape
(200,)
"""
import numpy as np
from sklearn.utils.validation import check_array, check_is_fitted

from ..utils._validation import check_real_targets, class_indices
from ._tree_readers import (SQUARED_ERROR, HistGradientBoostingReader, LightGBMReader,
                            XGBoostReader)
from .base import ModelAdapter, TrainingData

#: largest difference between a stored leaf and its recomputed Newton step, relative to the
#: tree's largest leaf (the libraries sum float32 gradients: measured below 1e-4)
LEAF_TOLERANCE = 1e-3


def is_boosted_trees(estimator):
    """A scikit-learn HistGradientBoosting model, or LightGBM's / XGBoost's sklearn models."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if isinstance(estimator, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
        return True
    names = {f"{c.__module__.split('.')[0]}.{c.__name__}" for c in type(estimator).__mro__}
    return bool(names & {"lightgbm.LGBMModel", "xgboost.XGBModel"})


def make_tree_adapter(estimator, *, device="auto", **options):
    """The adapter of a fitted boosted model (no options; scored on the CPU in float64)."""
    if options:
        raise TypeError(f"Adapter options {sorted(options)} apply to torch models only; a "
                        f"{type(estimator).__name__} takes none.")
    if device not in ("auto", "cpu"):
        raise ValueError(f"device={device!r}: boosted trees are scored on the CPU (their "
                         "libraries' own prediction routines); use device='auto' or 'cpu'.")
    return BoostedTreesAdapter(estimator)


def _reader(estimator):
    names = {c.__module__.split(".")[0] for c in type(estimator).__mro__}
    if "lightgbm" in names:
        check_is_fitted(estimator, "booster_")
        return LightGBMReader(estimator)
    if "xgboost" in names:
        check_is_fitted(estimator, "n_features_in_")
        return XGBoostReader(estimator)
    check_is_fitted(estimator)
    return HistGradientBoostingReader(estimator)


class BoostedTreesAdapter(ModelAdapter):
    """Differentiable view of a fitted boosted model: its leaf values, round by round.

    The parameters are every round's leaf values (the structure is held
    fixed); ``theta`` is the initial margin ``F_0`` (the leaves are read from
    the model's predictions of the rows being scored). The methods IP, the
    Newton form (``ExactHessian``) and the leave-one-out form (``NewtonLOO``)
    run through :func:`skinfluence.methods._rounds.round_influence`; the
    Hessian and HVP of the linear and network families have no meaning here
    and raise.

    Parameters
    ----------
    estimator : fitted HistGradientBoosting*, LGBM* or XGB* model
        Read only; never modified.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> from skinfluence.models import make_adapter
    >>> X = np.arange(40.0).reshape(-1, 1)
    >>> a = make_adapter(HistGradientBoostingRegressor(max_iter=5).fit(X, X.ravel()))
    >>> a.family, a.is_regressor, a.reader.n_rounds
    ('boosted trees', True, 5)
    """

    family = "boosted trees"
    boosted = True
    convex = False

    def __init__(self, estimator):
        self.estimator = estimator
        self.reader = _reader(estimator)
        problems = self.reader.problems()
        if problems:
            listed = "; ".join(f"{name}: {why}" for name, why in problems)
            raise ValueError(
                f"This {type(estimator).__name__} cannot be scored: with these settings its "
                f"leaves are not one Newton step of the training rows' gradients ({listed}).")
        self.is_regressor = self.reader.loss == SQUARED_ERROR
        self.classes_ = None if self.is_regressor else np.asarray(self.reader.classes_)
        self.n_features = int(estimator.n_features_in_)
        if isinstance(self.reader, XGBoostReader):  # its initial margin, from the model itself
            zero = self.reader.prepare(np.zeros((1, self.n_features)))
            self.reader.base = (self.reader.margin(zero) - self.reader.rounds_total(zero)).ravel()
        self.n_params = None  # leaves are counted on the rows read (a pass sets n_leaves_)

    @property
    def theta(self):
        return np.asarray(self.reader.base, dtype=np.float64)

    # ------------------------------------------------------------------ data
    def training_data(self, X, y, sample_weight=None, *, name="X"):
        X = self.check_X(X, name)
        if self.is_regressor:
            y_idx = check_real_targets(y, "y", X.shape[0])
        else:
            y_idx = self.encode(y, name="y" if name == "X" else f"y for {name}", n=X.shape[0])
        weight = np.ones(X.shape[0]) if sample_weight is None else \
            np.asarray(sample_weight, dtype=np.float64).copy()
        if not np.any(weight):
            raise ValueError("sample_weight: every training sample has zero weight.")
        if isinstance(self.reader, LightGBMReader):  # its initial score is the rows' average
            self.reader.fit_base(y_idx, weight)
        return TrainingData(X, y_idx, weight)

    def check_X(self, X, name):
        if not (hasattr(X, "dtypes") and hasattr(X, "columns")):  # a DataFrame keeps categories
            X = check_array(X, accept_sparse=False, dtype=np.float64,
                            ensure_all_finite="allow-nan", input_name=name)
            if np.isinf(X).any():
                raise ValueError(f"{name} contains infinity; boosted trees read NaN as missing, "
                                 "not infinite values.")
        if X.shape[1] != self.n_features:
            raise ValueError(f"{name} has {X.shape[1]} features, but the estimator was "
                             f"fitted with {self.n_features}.")
        return X

    def encode(self, y, *, name, n):
        if self.is_regressor:
            return check_real_targets(y, name, n)
        return class_indices(y, self.classes_, name, n)

    # ------------------------------------------------------------------ the loss in the margin
    def margin(self, X):
        """The model's own raw margin of rows ``X`` (validated): (n, trees per round)."""
        return self.reader.margin(self.reader.prepare(X))

    def probabilities(self, F):
        if self.is_regressor:
            return F
        if F.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-F[:, 0]))
            return np.column_stack([1.0 - p, p])
        e = np.exp(F - F.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict_proba(self, X):
        return self.probabilities(self.margin(X))

    def predict(self, X):
        return self.margin(X)[:, 0]

    def gradient_hessian(self, F, y):
        """Each row's loss derivatives in the margin, as the library computes them: (n, K) x 2."""
        if self.is_regressor:
            return F - y[:, None], np.ones_like(F)
        if F.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-F))
            return p - (y[:, None] == 1), p * (1.0 - p)
        P = self.probabilities(F)
        Y = np.zeros_like(P)
        Y[np.arange(len(y)), y] = 1.0
        return P - Y, self.reader.hessian_factor * P * (1.0 - P)

    def gradient_hessian_slopes(self, F, y):
        """``d g_k / d F_l`` and ``d h_k / d F_l``: (n, K, K) each (the leave-one-out form)."""
        n, K = F.shape
        if self.is_regressor:
            return np.ones((n, 1, 1)), np.zeros((n, 1, 1))
        if K == 1:
            p = 1.0 / (1.0 + np.exp(-F))
            s = p * (1.0 - p)
            return s[:, :, None], (s * (1.0 - 2.0 * p))[:, :, None]
        P = self.probabilities(F)
        dP = P[:, :, None] * (np.eye(K)[None] - P[:, None, :])  # d P_k / d F_l
        return dP, self.reader.hessian_factor * (1.0 - 2.0 * P)[:, :, None] * dP

    def phi_derivative(self, F, terms):
        """``d phi_j / d F`` of the objective's rows at margin ``F``: (m, K)."""
        if terms.kind == "loss":
            if self.is_regressor:
                return F - terms.y[:, None]
            g, _ = self.gradient_hessian(F, terms.y)
            return g  # the loss's own gradient (the Hessian factor is the library's)
        P = self.probabilities(F)
        if F.shape[1] == 1:
            s = P[:, 1] * P[:, 0]
            return (s if terms.positive == 1 else -s)[:, None]
        K = F.shape[1]
        return P[:, [terms.positive]] * (np.eye(K)[terms.positive][None] - P)

    def _phi(self, F, terms):
        if terms.kind == "loss":
            if self.is_regressor:
                return 0.5 * (F[:, 0] - terms.y) ** 2
            P = self.probabilities(F)
            return -np.log(np.clip(P[np.arange(len(terms.y)), terms.y], 1e-300, None))
        return self.probabilities(F)[:, terms.positive]

    def objective_value(self, terms, theta=None):
        self._no_theta(theta)
        return float(np.dot(terms.coef, self._phi(self.margin(terms.X), terms)))

    def objective_gradient(self, terms, theta=None):
        """``dJ / dF`` of the objective's rows (m, K): the margins are the model's outputs."""
        self._no_theta(theta)
        return terms.coef[:, None] * self.phi_derivative(self.margin(terms.X), terms)

    def _no_theta(self, theta):
        if theta is not None:
            raise TypeError("A boosted model is evaluated at its fitted leaves only.")

    # ------------------------------------------------------------------ what trees lack
    def _refuse(self, what):
        raise TypeError(
            f"A boosted-trees model has no {what}: its parameters are leaf values, each fitted "
            "once in its round. Score it with method='ip', 'exact_hessian' (each leaf's Newton "
            "curvature) or 'newton_loo' (leave-one-out through the rounds).")

    def attack(self, X, y_idx, objective):
        raise TypeError(
            "Adversarial robustness needs the model's input gradients, which boosted trees lack "
            "(their margin is piecewise constant in X). Attack a differentiable surrogate "
            "instead and score the trees on the attacked rows as validation data: "
            "influence_scores(model, X, y, X_attacked, y_val, objective='utility').")

    def hessian(self, train, indices=None, sample_weights=None, theta=None, batch_size=4096):
        self._refuse("whole-model Hessian")

    def hvp(self, train, vec, theta=None, batch_size=4096, indices=None, sample_weights=None):
        self._refuse("Hessian-vector product")

    def score_pass(self, train, thetas, directions, *, batch_size, progress=None):
        self._refuse("flat parameter vector to score along")

    def objective_gradients(self, terms, theta=None):
        self._refuse("flat parameter gradient per row")


def check_leaf_values(stored, newton, round_, output, reader):
    """Refuse a model whose leaf ``stored`` values are not the recomputed ``newton`` steps."""
    scale = max(float(np.max(np.abs(stored))), 1e-12)
    worst = float(np.max(np.abs(stored - newton)))
    if worst > LEAF_TOLERANCE * scale + 1e-9:
        tree = f"round {round_}" + (f", class {output}" if reader.n_outputs > 1 else "")
        raise ValueError(
            f"The {reader.library} model's leaves are not one Newton step of these training "
            f"rows' gradients ({tree}: a leaf differs from -eta G / (H + lambda) by {worst:.3g}, "
            f"{worst / scale:.1%} of the tree's largest leaf). Pass the rows, labels and "
            "sample_weight the model was fitted with; a model fitted with row subsampling, "
            "an early-stopping hold-out, L1, max_delta_step, monotonic constraints or an "
            "init score cannot be scored.")
