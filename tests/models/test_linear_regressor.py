"""Squared-error linear regressors against independent references.

References: leave-one-out refits of scikit-learn (NewtonLOO is exact for a
quadratic training loss), torch autograd (per-sample gradients, the training
objective's Hessian), finite differences of weighted refits, and a brute-force
search of the attack ball.
"""
import itertools

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, Ridge, SGDRegressor

from skinfluence import (AdversarialRobustness, ExactHessian, IP, NewtonLOO, Utility,
                         influence_scores)
from skinfluence.models import make_adapter
from skinfluence.models.linear_regressor import LinearRegressorAdapter


def _problem(n=60, d=4, seed=0):
    rng = np.random.RandomState(seed)
    w = rng.normal(size=d)
    X, Xv = rng.normal(size=(n, d)), rng.normal(size=(25, d))
    y = X @ w + 0.5 + rng.normal(scale=0.7, size=n)
    yv = Xv @ w + 0.5 + rng.normal(scale=0.7, size=25)
    return X, y, Xv, yv


def _half_mse(model, Xv, yv):
    return np.mean(0.5 * (model.predict(Xv) - yv) ** 2)


REGRESSORS = [
    Ridge(alpha=2.0, solver="cholesky"),
    Ridge(alpha=0.3, solver="cholesky", fit_intercept=False),
    LinearRegression(),
]


@pytest.mark.parametrize("estimator", REGRESSORS, ids=["ridge", "ridge-no-b", "ols"])
@pytest.mark.parametrize("weighted", [False, True])
def test_newton_loo_is_exact_leave_one_out(estimator, weighted):
    """Quadratic loss: one Newton step is the refit, so scores equal LOO to 1e-8."""
    X, y, Xv, yv = _problem()
    sw = np.random.RandomState(5).uniform(0.3, 2.5, size=len(y)) if weighted else None
    model = estimator.fit(X, y, sample_weight=sw)
    base = _half_mse(model, Xv, yv)
    loo = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        refit = Ridge(**estimator.get_params()) if isinstance(estimator, Ridge) else \
            LinearRegression(**estimator.get_params())
        refit.fit(X[keep], y[keep], sample_weight=None if sw is None else sw[keep])
        loo.append(_half_mse(refit, Xv, yv) - base)
    loo = np.array(loo)
    scores = influence_scores(model, X, y, Xv, yv, method=NewtonLOO(), sample_weight=sw)
    np.testing.assert_allclose(scores, loo, rtol=1e-8, atol=1e-10 * np.abs(loo).max())


def _torch_reference(X, y, sw, alpha, fit_intercept, theta, Xv, yv):
    """Per-sample gradients, mean-form Hessian and grad J, all by torch autograd."""
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    c = torch.ones(len(y), dtype=torch.float64) if sw is None else torch.as_tensor(sw)
    d = X.shape[1]

    def pred(th, A):
        return A @ th[:d] + (th[d] if fit_intercept else 0.0)

    def losses(th):
        return 0.5 * (pred(th, Xt) - yt) ** 2

    def objective(th):  # sum c_i l_i + 0.5 alpha ||w||^2, over sum c (mean form)
        return ((c * losses(th)).sum() + 0.5 * alpha * (th[:d] ** 2).sum()) / c.sum()

    def J(th):
        return (0.5 * (pred(th, torch.as_tensor(Xv)) - torch.as_tensor(yv)) ** 2).mean()

    th = torch.as_tensor(theta)
    G = torch.autograd.functional.jacobian(losses, th).numpy()
    H = torch.autograd.functional.hessian(objective, th).numpy()
    gJ = torch.autograd.functional.jacobian(J, th).numpy()
    rel = (c / c.mean()).numpy()
    return G * rel[:, None], H, gJ


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha,fit_intercept", [(2.0, True), (0.5, False)])
def test_ip_and_exact_hessian_match_autograd(weighted, alpha, fit_intercept):
    X, y, Xv, yv = _problem(seed=1)
    sw = np.random.RandomState(2).uniform(0.2, 3.0, size=len(y)) if weighted else None
    model = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="cholesky").fit(
        X, y, sample_weight=sw)
    theta = make_adapter(model).theta
    G, H, gJ = _torch_reference(X, y, sw, alpha, fit_intercept, theta, Xv, yv)
    ip = influence_scores(model, X, y, Xv, yv, method=IP(), sample_weight=sw)
    np.testing.assert_allclose(ip, G @ gJ, rtol=1e-9, atol=1e-12)
    eh = influence_scores(model, X, y, Xv, yv, method=ExactHessian(damping=0.0),
                          sample_weight=sw)
    np.testing.assert_allclose(eh, G @ np.linalg.solve(H, gJ), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 3.0])
def test_exact_hessian_is_the_weighted_refit_derivative(alpha):
    """Removing i = lowering its weight: score_i ~ -n sw_i dJ/dsw_i (central differences)."""
    X, y, Xv, yv = _problem(seed=3)
    sw = np.random.RandomState(4).uniform(0.2, 3.0, size=len(y))
    est = Ridge(alpha=alpha, solver="cholesky") if alpha else LinearRegression()
    model = est.fit(X, y, sample_weight=sw)
    scores = influence_scores(model, X, y, Xv, yv, method=ExactHessian(damping=0.0),
                              sample_weight=sw)
    h, n = 1e-5, len(y)
    for i in (0, 9, 33):
        up, down = sw.copy(), sw.copy()
        up[i] += h
        down[i] -= h
        dJ = (_half_mse(est.fit(X, y, sample_weight=up), Xv, yv)
              - _half_mse(est.fit(X, y, sample_weight=down), Xv, yv)) / (2 * h)
        assert scores[i] == pytest.approx(-n * sw[i] * dJ, rel=1e-5, abs=1e-10)


def test_sgd_regressor_objective_is_mean_half_squared_error_plus_alpha():
    """At the minimiser of mean 0.5 r^2 + alpha/2 ||w||^2 (Ridge with alpha n), grad F = 0."""
    X, y, _, _ = _problem(seed=6)
    alpha, n = 0.05, len(y)
    sgd = SGDRegressor(alpha=alpha, max_iter=5, tol=None, random_state=0).fit(X, y)
    ridge = Ridge(alpha=alpha * n, solver="cholesky").fit(X, y)
    sgd.coef_, sgd.intercept_ = ridge.coef_.copy(), np.array([ridge.intercept_])
    a = make_adapter(sgd)
    grad = a.training_gradient(a.training_data(X, y))
    assert np.max(np.abs(grad)) < 1e-12
    # and away from it the gradient is that of the mean form (a finite difference)
    theta = a.theta + 0.1

    def F(th):
        r = X @ th[:-1] + th[-1] - y
        return np.mean(0.5 * r ** 2) + 0.5 * alpha * th[:-1] @ th[:-1]

    fd = np.array([(F(theta + e) - F(theta - e)) / 2e-6 for e in 1e-6 * np.eye(theta.size)])
    np.testing.assert_allclose(a.training_gradient(a.training_data(X, y), theta), fd,
                               rtol=1e-6, atol=1e-9)
    l1 = SGDRegressor(penalty="l1", max_iter=5, tol=None, random_state=0).fit(X, y)
    assert not np.any(make_adapter(l1).regulariser_diagonal())


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("epsilon", [0.1, 0.7])
def test_budgeted_attack_is_the_worst_point_of_the_ball(norm, epsilon):
    """Closed form against a brute-force search: linf box vertices, a dense l2 circle."""
    X, y, Xv, yv = _problem(d=2, seed=7)
    model = Ridge(alpha=1.0).fit(X, y)
    a = make_adapter(model)
    Xa = a.budgeted_attack(Xv, yv, epsilon, norm)
    w = model.coef_
    attacked = 0.5 * (model.predict(Xa) - yv) ** 2
    dual = np.abs(w).sum() if norm == "linf" else np.linalg.norm(w)
    r = model.predict(Xv) - yv
    np.testing.assert_allclose(attacked, 0.5 * (np.abs(r) + epsilon * dual) ** 2, rtol=1e-12)
    if norm == "linf":
        deltas = epsilon * np.array(list(itertools.product([-1.0, 1.0], repeat=2)))
        assert np.allclose(np.abs(Xa - Xv).max(axis=1), epsilon)
    else:
        t = np.linspace(0, 2 * np.pi, 20001)
        deltas = epsilon * np.column_stack([np.cos(t), np.sin(t)])
        assert np.allclose(np.linalg.norm(Xa - Xv, axis=1), epsilon)
    brute = np.max(0.5 * (r[:, None] + deltas @ w) ** 2, axis=1)
    assert np.all(attacked >= brute - 1e-12)
    np.testing.assert_allclose(attacked, brute, rtol=1e-7)


def test_robustness_objective_scores_the_attacked_validation_loss():
    """The objective is the mean loss on the attacked rows: IP equals the gradient product."""
    X, y, Xv, yv = _problem(seed=8)
    model = Ridge(alpha=1.0).fit(X, y)
    a = make_adapter(model)
    Xa = a.budgeted_attack(Xv, yv, 0.4, "l2")
    got = influence_scores(model, X, y, Xv, yv, method=IP(),
                           objective=AdversarialRobustness(epsilon=0.4, norm="l2"))
    want = influence_scores(model, X, y, Xa, yv, method=IP(), objective=Utility())
    np.testing.assert_allclose(got, want, rtol=1e-12)
    clean = influence_scores(model, X, y, Xv, yv, method=IP())
    assert np.max(np.abs(got - clean)) > 0.05 * np.max(np.abs(clean))
    with pytest.raises(ValueError, match="norm='l2' or 'linf'"):
        influence_scores(model, X, y, Xv, yv, objective=AdversarialRobustness())


def test_bad_regressors_and_targets_are_refused():
    X, y, Xv, yv = _problem(seed=9)
    with pytest.raises(TypeError, match="positive=True"):
        make_adapter(LinearRegression(positive=True).fit(X, y))
    with pytest.raises(TypeError, match="squared_error"):
        make_adapter(SGDRegressor(loss="huber", max_iter=5, tol=None).fit(X, y))
    with pytest.raises(ValueError, match="one target"):
        make_adapter(Ridge().fit(X, np.column_stack([y, y])))
    model = Ridge().fit(X, y)
    bad = yv.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="y_val contains NaN"):
        influence_scores(model, X, y, Xv, bad)
    with pytest.raises(ValueError, match="y has 59 targets"):
        influence_scores(model, X, y[:-1], Xv, yv)
    with pytest.raises(TypeError, match="no class probabilities"):
        make_adapter(model).predict_proba(Xv)
    assert isinstance(make_adapter(model), LinearRegressorAdapter)


def test_scores_do_not_mutate_the_callers_data():
    X, y, Xv, yv = _problem(seed=10)
    model = Ridge().fit(X, y)
    copies = [X.copy(), y.copy(), Xv.copy(), yv.copy(), model.coef_.copy()]
    for method in ("ip", "exact_hessian", "sampled_hessian", "ip_ensemble", "newton_loo"):
        s = influence_scores(model, X, y, Xv, yv, method=method)
        assert s.shape == (len(y),) and np.all(np.isfinite(s))
    for before, after in zip(copies, [X, y, Xv, yv, model.coef_]):
        np.testing.assert_array_equal(before, after)


def test_influence_matrix_newton_loo_is_each_test_rows_leave_one_out_change():
    """One column per test row: the exact refit change of that row's half squared error."""
    from skinfluence import influence_matrix

    X, y, Xv, yv = _problem(n=40, seed=11)
    est = Ridge(alpha=1.5, solver="cholesky")
    model = est.fit(X, y)
    M = np.asarray(influence_matrix(model, X, y, Xv[:5], yv[:5], method=NewtonLOO()))
    base = 0.5 * (model.predict(Xv[:5]) - yv[:5]) ** 2
    loo = np.array([0.5 * (Ridge(alpha=1.5, solver="cholesky").fit(
        np.delete(X, i, 0), np.delete(y, i)).predict(Xv[:5]) - yv[:5]) ** 2 - base
        for i in range(40)])  # (n_train, n_test)
    np.testing.assert_allclose(M.T, loo, rtol=1e-8, atol=1e-10 * np.abs(loo).max())
