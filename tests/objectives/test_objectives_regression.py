"""Regression fairness objectives against leave-one-out refits and hand-built gaps.

Ridge's training loss is quadratic and both objectives are quadratic (or
linear) in theta once their groups are frozen, so NewtonLOO must equal the
refits' change to 1e-8; the frozen groups are chosen by hand here.
"""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from skinfluence import (BoundedGroupLoss, IP, MeanPredictionGap, NewtonLOO, Utility,
                         influence_scores)


def _problem(n=50, n_groups=2, seed=0):
    rng = np.random.RandomState(seed)
    X, Xv = rng.normal(size=(n, 3)), rng.normal(size=(40, 3))
    s, sv = rng.randint(n_groups, size=n), rng.randint(n_groups, size=40)
    noise = 0.2 + 0.8 * s  # the higher groups are noisier and shifted
    y = X @ [1.0, -1.0, 0.5] + 0.7 * s + rng.normal(size=n) * noise
    yv = Xv @ [1.0, -1.0, 0.5] + 0.7 * sv + rng.normal(size=40) * (0.2 + 0.8 * sv)
    return X, y, Xv, yv, sv


def _loo(X, y, statistic, alpha=1.0):
    base = statistic(Ridge(alpha=alpha, solver="cholesky").fit(X, y))
    return np.array([statistic(Ridge(alpha=alpha, solver="cholesky").fit(
        np.delete(X, i, 0), np.delete(y, i))) - base for i in range(len(y))])


@pytest.mark.parametrize("n_groups,absolute", [(2, False), (2, True), (3, True)])
def test_mean_prediction_gap_newton_loo_is_the_refit_change_of_the_gap(n_groups, absolute):
    X, y, Xv, yv, sv = _problem(n_groups=n_groups, seed=n_groups)
    model = Ridge(alpha=1.0, solver="cholesky").fit(X, y)
    f = model.predict(Xv)
    means = np.array([f[sv == k].mean() for k in range(n_groups)])
    if absolute:  # the pair of the largest gap at the fit, frozen
        a, b = int(np.argmax(means)), int(np.argmin(means))
    else:
        a, b = 1, 0
    loo = _loo(X, y, lambda m: m.predict(Xv)[sv == a].mean() - m.predict(Xv)[sv == b].mean())
    scores = influence_scores(model, X, y, Xv, yv, method=NewtonLOO(),
                              objective=MeanPredictionGap(absolute=absolute),
                              sensitive_features_val=sv)
    np.testing.assert_allclose(scores, loo, rtol=1e-8, atol=1e-10 * np.abs(loo).max())


@pytest.mark.parametrize("bound", [None, "between", "above"])
def test_bounded_group_loss_newton_loo_is_the_refit_change(bound):
    X, y, Xv, yv, sv = _problem(n_groups=3, seed=5)
    model = Ridge(alpha=1.0, solver="cholesky").fit(X, y)
    r2 = 0.5 * (model.predict(Xv) - yv) ** 2
    L = np.array([r2[sv == k].mean() for k in range(3)])
    if bound is None:
        upper, groups = None, [int(np.argmax(L))]
    elif bound == "between":
        upper = float(np.sort(L)[0] + np.sort(L)[1]) / 2
        groups = np.flatnonzero(L > upper).tolist()
    else:
        upper, groups = float(L.max() + 1.0), []

    def excess(m):
        e = 0.5 * (m.predict(Xv) - yv) ** 2
        return sum(e[sv == k].mean() for k in groups)

    loo = _loo(X, y, excess)
    scores = influence_scores(model, X, y, Xv, yv, method=NewtonLOO(),
                              objective=BoundedGroupLoss(upper_bound=upper),
                              sensitive_features_val=sv)
    if not groups:
        assert np.all(scores == 0)
        return
    assert len(groups) == (1 if bound is None else 2)
    np.testing.assert_allclose(scores, loo, rtol=1e-8, atol=1e-10 * np.abs(loo).max())


def test_bounded_group_loss_of_a_classifier_is_the_worst_groups_log_loss():
    """Construction: the worst group's rows alone under Utility give the same IP scores."""
    rng = np.random.RandomState(1)
    X, Xv = rng.normal(size=(80, 3)), rng.normal(size=(60, 3))
    sv = rng.randint(2, size=60)
    y = (X[:, 0] > 0).astype(int)
    yv = np.where(sv == 1, rng.randint(2, size=60), (Xv[:, 0] > 0).astype(int))
    model = LogisticRegression().fit(X, y)
    p = model.predict_proba(Xv)[np.arange(60), yv]
    worst = int(np.argmax([-np.log(p[sv == k]).mean() for k in (0, 1)]))
    got = influence_scores(model, X, y, Xv, yv, method=IP(), objective=BoundedGroupLoss(),
                           sensitive_features_val=sv)
    want = influence_scores(model, X, y, Xv[sv == worst], yv[sv == worst], method=IP(),
                            objective=Utility())
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_group_objectives_check_their_inputs():
    X, y, Xv, yv, sv = _problem(n_groups=3, seed=7)
    model = Ridge().fit(X, y)
    with pytest.raises(ValueError, match="binary sensitive feature"):
        influence_scores(model, X, y, Xv, yv, objective=MeanPredictionGap(absolute=False),
                         sensitive_features_val=sv)
    with pytest.raises(ValueError, match="at least 2 groups"):
        influence_scores(model, X, y, Xv, yv, objective=MeanPredictionGap(),
                         sensitive_features_val=np.zeros(40))
    with pytest.raises(ValueError, match="needs the sensitive attribute"):
        influence_scores(model, X, y, Xv, yv, objective=BoundedGroupLoss())
    with pytest.raises(ValueError, match="upper_bound"):
        influence_scores(model, X, y, Xv, yv, objective=BoundedGroupLoss(upper_bound=-1.0),
                         sensitive_features_val=sv)
    clf = LogisticRegression().fit(X, (y > 0).astype(int))
    with pytest.raises(TypeError, match="DemographicParity"):
        influence_scores(clf, X, (y > 0).astype(int), Xv, (yv > 0).astype(int),
                         objective=MeanPredictionGap(), sensitive_features_val=sv)
    # the column form: sensitive_feature= reads X_val's column
    col = np.column_stack([Xv, sv])
    Xs = np.column_stack([X, np.zeros(len(X))])
    m2 = Ridge().fit(Xs, y)
    a = influence_scores(m2, Xs, y, col, yv, objective=MeanPredictionGap(sensitive_feature=3))
    b = influence_scores(m2, Xs, y, col, yv, objective=MeanPredictionGap(),
                         sensitive_features_val=sv)
    np.testing.assert_array_equal(a, b)
