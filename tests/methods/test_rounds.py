"""Boosted-tree influence against a fixed-structure refit written here from the formulas.

The reference replays boosting with each row's leaves held fixed and every leaf
recomputed as one Newton step ``-eta G / (H + lambda)`` of the weighted rows'
gradients; memberships come from each library's public predictions (scikit-learn's
staged decision function grouped by value, LightGBM's and XGBoost's ``pred_leaf``),
not from the adapter's readers, and the loss derivatives from scipy. The replay at
unit weights must give the model's own probabilities; then finite differences of
its validation loss in one row's weight are the derivative the scores claim.
"""
import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import log_loss

from skinfluence import ExactHessian, IP, NewtonLOO, influence_scores

lgb = pytest.importorskip("lightgbm")
xgb = pytest.importorskip("xgboost")

N_TRAIN, N_VAL, ROUNDS = 90, 40, 6


def _data(kind, seed=0):
    if kind == "regression":
        X, y = make_regression(N_TRAIN + N_VAL, 5, noise=10.0, random_state=seed)
        y = y / 50.0
    else:
        X, y = make_classification(N_TRAIN + N_VAL, 5, n_informative=4, n_redundant=0,
                                   n_classes=3 if kind == "multiclass" else 2,
                                   random_state=seed)
    X[::9, 1] = np.nan  # missing values, routed as each model routes them
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def _model(library, kind, **extra):
    regression = kind == "regression"
    if library == "hgb":
        cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        return cls(max_iter=ROUNDS, max_leaf_nodes=6, min_samples_leaf=5, learning_rate=0.3,
                   l2_regularization=0.5, early_stopping=False, **extra)
    if library == "lgb":
        cls = lgb.LGBMRegressor if regression else lgb.LGBMClassifier
        return cls(n_estimators=ROUNDS, num_leaves=6, min_child_samples=5, learning_rate=0.3,
                   reg_lambda=0.5, verbose=-1, **extra)
    cls = xgb.XGBRegressor if regression else xgb.XGBClassifier
    return cls(n_estimators=ROUNDS, max_depth=2, learning_rate=0.3, reg_lambda=0.5, **extra)


def _memberships(model, library, X_all, K):
    """(n, T, K) leaf codes of every row, read through the libraries' public predictions."""
    T = ROUNDS
    if library == "hgb":  # its trees walked here from their nodes (no categorical splits)
        codes = np.empty((len(X_all), T, K), dtype=int)
        for t, round_ in enumerate(model._predictors):
            for k, predictor in enumerate(round_):
                codes[:, t, k] = [_walk(predictor.nodes, x) for x in X_all]
        return codes, None
    if library == "lgb":
        leaves = model.booster_.predict(X_all, pred_leaf=True).reshape(len(X_all), T, K)
        return leaves, None
    booster = model.get_booster()
    leaves = booster.predict(xgb.DMatrix(X_all), pred_leaf=True).reshape(len(X_all), T, K)
    return leaves.astype(int), None


def _walk(nodes, x):
    node = 0
    while not nodes["is_leaf"][node]:
        value = x[nodes["feature_idx"][node]]
        left = nodes["missing_go_to_left"][node] if np.isnan(value) else \
            value <= nodes["num_threshold"][node]
        node = nodes["left"][node] if left else nodes["right"][node]
    return node


def _derivatives(F, y, kind, hessian_factor):
    if kind == "regression":
        return F - y[:, None], np.ones_like(F)
    if kind == "binary":
        p = expit(F)
        return p - y[:, None], p * (1 - p)
    P = softmax(F, axis=1)
    return P - np.eye(F.shape[1])[y], hessian_factor * P * (1 - P)


def _replay(codes, base, y_train, c, kind, eta, lam, hessian_factor):
    """Margins of every row after boosting with the structure fixed and weights ``c``."""
    n_all, T, K = codes.shape
    F = np.tile(base, (n_all, 1))
    for t in range(T):
        g, h = _derivatives(F[:N_TRAIN], y_train, kind, hessian_factor)
        step = np.zeros_like(F)
        for k in range(K):
            _, j = np.unique(codes[:, t, k], return_inverse=True)
            jt = j[:N_TRAIN]
            G = np.bincount(jt, c * g[:, k], j.max() + 1)
            H = np.bincount(jt, c * h[:, k], j.max() + 1)
            step[:, k] = (-eta * G / (H + lam))[j]
        F = F + step
    return F


def _val_loss(F_val, y_val, kind):
    if kind == "regression":
        return float(np.mean(0.5 * (F_val[:, 0] - y_val) ** 2))
    P = np.column_stack([1 - expit(F_val[:, 0]), expit(F_val[:, 0])]) if kind == "binary" \
        else softmax(F_val, axis=1)
    return log_loss(y_val, P, labels=np.arange(P.shape[1]))


def _base(model, library, kind, y):
    if library == "hgb":
        return np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
    if library == "lgb":  # LightGBM starts from the rows' average, folded into round 0
        if kind == "regression":
            return np.array([y.mean()])
        if kind == "binary":
            return np.array([np.log(y.mean() / (1 - y.mean()))])
        return np.log(np.bincount(y) / len(y))
    booster = model.get_booster()
    zero = xgb.DMatrix(np.zeros((1, 5)))
    full = booster.predict(zero, output_margin=True).ravel()
    trees = sum(booster[t:t + 1].predict(xgb.DMatrix(np.zeros((1, 5)),
                                                     base_margin=np.zeros((1, len(full)))
                                                     if len(full) > 1 else np.zeros(1)),
                                         output_margin=True).ravel() for t in range(ROUNDS))
    return (full - trees).astype(np.float64)  # XGBoost predicts in float32


CASES = [(lib, kind) for lib in ("hgb", "lgb", "xgb")
         for kind in ("binary", "multiclass", "regression")]


def _setup(library, kind):
    X, y, X_val, y_val = _data(kind)
    model = _model(library, kind).fit(X, y)
    K = 3 if kind == "multiclass" else 1
    codes, _ = _memberships(model, library, np.vstack([X, X_val]), K)
    factor = {"lgb": 1.5, "xgb": 2.0}.get(library, 1.0) if kind == "multiclass" else 1.0
    base = _base(model, library, kind, y)
    replay = lambda c: _replay(codes, base, y, c, kind, 0.3, 0.5, factor)  # noqa: E731
    return model, X, y, X_val, y_val, replay


@pytest.mark.parametrize("library, kind", CASES)
def test_replay_reproduces_the_model(library, kind):
    """The reference itself: the fixed-structure replay at unit weights is the model."""
    model, X, y, X_val, y_val, replay = _setup(library, kind)
    F_val = replay(np.ones(N_TRAIN))[N_TRAIN:]
    if kind == "regression":
        np.testing.assert_allclose(F_val[:, 0], model.predict(X_val), rtol=1e-4, atol=1e-4)
    else:
        P = np.column_stack([1 - expit(F_val[:, 0]), expit(F_val[:, 0])]) \
            if kind == "binary" else softmax(F_val, axis=1)
        np.testing.assert_allclose(P, model.predict_proba(X_val), atol=1e-4)


@pytest.mark.parametrize("library, kind", CASES)
def test_leave_one_out_derivative_equals_finite_differences(library, kind):
    """NewtonLOO(second_order=False): score_i = -n dJ/dc_i of the fixed-structure refit."""
    model, X, y, X_val, y_val, replay = _setup(library, kind)
    scores = influence_scores(model, X, y, X_val, y_val,
                              method=NewtonLOO(second_order=False))
    eps = 1e-5
    fd = np.empty(N_TRAIN)
    for i in range(N_TRAIN):
        c = np.ones(N_TRAIN)
        c[i] += eps
        up = _val_loss(replay(c)[N_TRAIN:], y_val, kind)
        c[i] -= 2 * eps
        down = _val_loss(replay(c)[N_TRAIN:], y_val, kind)
        fd[i] = (up - down) / (2 * eps)
    # float32 sums inside the libraries: their leaves agree with float64 to ~1e-6
    np.testing.assert_allclose(scores, -N_TRAIN * fd, rtol=2e-3,
                               atol=2e-3 * np.abs(fd * N_TRAIN).max())


@pytest.mark.parametrize("library, kind", [("hgb", "binary"), ("lgb", "multiclass"),
                                           ("xgb", "regression")])
def test_leave_one_out_tracks_actual_removals(library, kind):
    """Removing the row (weight 0) in the replay: the LOO form is closer than the slope."""
    model, X, y, X_val, y_val, replay = _setup(library, kind)
    loo = influence_scores(model, X, y, X_val, y_val, method="newton_loo")
    slope = influence_scores(model, X, y, X_val, y_val, method=NewtonLOO(second_order=False))
    J0 = _val_loss(replay(np.ones(N_TRAIN))[N_TRAIN:], y_val, kind)
    actual = np.empty(N_TRAIN)
    for i in range(N_TRAIN):
        c = np.ones(N_TRAIN)
        c[i] = 0.0
        actual[i] = N_TRAIN * (_val_loss(replay(c)[N_TRAIN:], y_val, kind) - J0)
    assert np.corrcoef(loo, actual)[0, 1] > 0.99
    assert np.abs(loo - actual).mean() < np.abs(slope - actual).mean()


@pytest.mark.parametrize("library", ["hgb", "lgb", "xgb"])
def test_newton_and_gradient_forms_by_hand(library):
    """exact_hessian and ip: one round's leaves, the val gradient at the final model."""
    kind = "binary"
    model, X, y, X_val, y_val, replay = _setup(library, kind)
    K = 1
    codes, _ = _memberships(model, library, np.vstack([X, X_val]), K)
    base = _base(model, library, kind, y)
    F_all = np.tile(base, (len(codes), 1))
    F_final = replay(np.ones(N_TRAIN))
    dphi = (expit(F_final[N_TRAIN:, 0]) - y_val) / N_VAL  # d mean log-loss / dF
    newton = np.zeros(N_TRAIN)
    gradient = np.zeros(N_TRAIN)
    for t in range(ROUNDS):
        g, h = _derivatives(F_all[:N_TRAIN], y, kind, 1.0)
        _, j = np.unique(codes[:, t, 0], return_inverse=True)
        jt, jv = j[:N_TRAIN], j[N_TRAIN:]
        G = np.bincount(jt, g[:, 0], j.max() + 1)
        H = np.bincount(jt, h[:, 0], j.max() + 1)
        v = -0.3 * G / (H + 0.5)
        D = np.bincount(jv, dphi, j.max() + 1)
        newton += N_TRAIN * (0.3 * g[:, 0] + v[jt] * h[:, 0]) / (H[jt] + 0.5) * D[jt]
        gradient += g[:, 0] * D[jt]
        F_all[:, 0] += v[j]
    np.testing.assert_allclose(influence_scores(model, X, y, X_val, y_val,
                                                method="exact_hessian"),
                               newton, rtol=1e-3, atol=1e-3 * np.abs(newton).max())
    np.testing.assert_allclose(influence_scores(model, X, y, X_val, y_val, method=IP()),
                               gradient, rtol=1e-3, atol=1e-3 * np.abs(gradient).max())


def test_sample_weights_enter_every_leaf():
    """A weighted fit: the weighted replay's slope equals the weighted scores / c_i."""
    X, y, X_val, y_val = _data("binary")
    w = np.random.default_rng(0).uniform(0.5, 2.0, N_TRAIN)
    model = _model("lgb", "binary").fit(X, y, sample_weight=w)
    codes, _ = _memberships(model, "lgb", np.vstack([X, X_val]), 1)
    p = np.dot(w, y) / w.sum()
    base = np.array([np.log(p / (1 - p))])
    scores = influence_scores(model, X, y, X_val, y_val, sample_weight=w,
                              method=NewtonLOO(second_order=False))
    eps = 1e-5
    for i in range(0, N_TRAIN, 7):
        c = w.copy()
        c[i] += eps
        up = _val_loss(_replay(codes, base, y, c, "binary", 0.3, 0.5, 1.0)[N_TRAIN:], y_val,
                       "binary")
        c[i] -= 2 * eps
        down = _val_loss(_replay(codes, base, y, c, "binary", 0.3, 0.5, 1.0)[N_TRAIN:], y_val,
                         "binary")
        expected = -N_TRAIN * w[i] * (up - down) / (2 * eps)
        assert scores[i] == pytest.approx(expected, rel=2e-3, abs=1e-4)
    with pytest.raises(ValueError, match="not one Newton step"):  # the weights left out
        influence_scores(model, X, y, X_val, y_val, method="ip")


@pytest.mark.parametrize("method", ["ip_ensemble", "sampled_hessian", "kfac"])
def test_methods_without_meaning_for_trees_are_refused_by_name(method):
    X, y, X_val, y_val = _data("binary")
    model = _model("hgb", "binary").fit(X, y)
    with pytest.raises(TypeError, match="has no meaning for boosted trees"):
        influence_scores(model, X, y, X_val, y_val, method=method)


@pytest.mark.parametrize("method, match", [(ExactHessian(damping=0.1), "damping"),
                                           (ExactHessian(solver="cg"), "solver"),
                                           (NewtonLOO(damping=0.1), "damping")])
def test_curvature_settings_are_the_models_own(method, match):
    X, y, X_val, y_val = _data("binary")
    model = _model("xgb", "binary").fit(X, y)
    with pytest.raises(ValueError, match=match):
        influence_scores(model, X, y, X_val, y_val, method=method)
