"""Torch / skorch regressors (MSELoss) against the linear regressor adapter.

A one-layer net holding Ridge's parameters has the same model; its loss
``(f - y)^2`` is twice the linear adapter's ``0.5 (f - y)^2`` and its weight
decay ``wd`` matches Ridge's ``alpha = sum(c) wd / 2``. So every gradient of a
loss and the Hessian double: IP scores are exactly 4x the linear ones,
ExactHessian's 2x (1x and 2x for an objective on predictions, which does not
double). The linear adapter itself is checked against refits and autograd in
test_linear_regressor.py.
"""
import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, Ridge

from skinfluence import (AdversarialRobustness, ExactHessian, IP, MeanPredictionGap,
                         influence_scores)
from skinfluence.models import make_adapter

skorch = pytest.importorskip("skorch")


def _problem(n=60, seed=0):
    rng = np.random.RandomState(seed)
    X, Xv = rng.normal(size=(n, 3)), rng.normal(size=(20, 3))
    y = X @ [1.0, 2.0, -1.0] + 0.3 + rng.normal(size=n)
    yv = Xv @ [1.0, 2.0, -1.0] + 0.3 + rng.normal(size=20)
    return X, y, Xv, yv


def _linear_net(model):
    net = torch.nn.Linear(model.coef_.size, 1).double()
    with torch.no_grad():
        net.weight[:] = torch.as_tensor(model.coef_)[None]
        net.bias[:] = float(model.intercept_)
    return net


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("wd", [0.05, 0.4])
def test_one_layer_mse_net_matches_ridge(weighted, wd):
    X, y, Xv, yv = _problem(seed=int(weighted))
    sw = np.random.RandomState(3).uniform(0.3, 2.0, size=len(y)) if weighted else None
    c_total = len(y) if sw is None else sw.sum()
    ridge = Ridge(alpha=c_total * wd / 2, solver="cholesky").fit(X, y, sample_weight=sw)
    pair = (_linear_net(ridge), torch.nn.MSELoss())
    kw = dict(sample_weight=sw)
    for method, factor in ((IP(), 4.0), (ExactHessian(damping=0.0), 2.0)):
        lin = influence_scores(ridge, X, y, Xv, yv, method=method, **kw)
        net = influence_scores(pair, X, y, Xv, yv, method=method,
                               weight_decay={"weight": wd}, **kw)
        np.testing.assert_allclose(net, factor * lin, rtol=1e-9, atol=1e-12)
    s = (Xv[:, 0] > 0).astype(int)
    for method, factor in ((IP(), 2.0), (ExactHessian(damping=0.0), 1.0)):
        lin = influence_scores(ridge, X, y, Xv, yv, method=method, objective=MeanPredictionGap(),
                               sensitive_features_val=s, **kw)
        net = influence_scores(pair, X, y, Xv, yv, method=method, objective=MeanPredictionGap(),
                               sensitive_features_val=s, weight_decay={"weight": wd}, **kw)
        np.testing.assert_allclose(net, factor * lin, rtol=1e-9, atol=1e-12)


def test_skorch_regressor_is_scored_with_its_mse_criterion():
    X, y, Xv, yv = _problem(n=80, seed=2)
    net = skorch.NeuralNetRegressor(torch.nn.Linear, module__in_features=3, module__out_features=1,
                                    max_epochs=5, lr=0.05, train_split=None, verbose=0)
    net.fit(X.astype(np.float32), y.reshape(-1, 1).astype(np.float32))
    ols = LinearRegression().fit(X, y)  # same model family; its parameters replaced by the net's
    ols.coef_ = net.module_.weight.detach().double().numpy()[0].copy()
    ols.intercept_ = float(net.module_.bias.detach())
    got = influence_scores(net, X.astype(np.float32), y, Xv.astype(np.float32), yv,
                           method=ExactHessian(damping=0.0))
    want = influence_scores(ols, X, y, Xv, yv, method=ExactHessian(damping=0.0))
    np.testing.assert_allclose(got, 2.0 * want, rtol=2e-3, atol=1e-4 * np.abs(want).max())
    with pytest.raises(TypeError, match="no class probabilities"):
        make_adapter(net).predict_proba(Xv.astype(np.float32))


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_on_a_linear_net_reaches_the_closed_form_worst_case(norm):
    X, y, Xv, yv = _problem(seed=4)
    ridge = Ridge(alpha=1.0).fit(X, y)
    pair = (_linear_net(ridge), torch.nn.MSELoss())
    objective = AdversarialRobustness(epsilon=0.3, norm=norm, steps=20)
    a = make_adapter(pair)
    attacked = a.attack(a.check_X(Xv, "X_val"), yv, objective).numpy()
    closed = make_adapter(ridge).budgeted_attack(Xv, yv, 0.3, norm)
    np.testing.assert_allclose(attacked, closed, rtol=1e-10, atol=1e-12)


def test_regression_targets_of_a_net_are_checked():
    X, y, Xv, yv = _problem(seed=5)
    pair = (_linear_net(Ridge().fit(X, y)), torch.nn.MSELoss())
    with pytest.raises(ValueError, match="y_val contains NaN"):
        influence_scores(pair, X, y, Xv, np.full(len(yv), np.nan))
    with pytest.raises(ValueError, match="y has 59 targets"):
        influence_scores(pair, X, y[:-1], Xv, yv)
