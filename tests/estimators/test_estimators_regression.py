"""The meta-estimators around a regressor, against references built by hand.

References: scikit-learn's r2_score and model selection, leave-one-out refits,
Ridge clones fitted on the same explicit folds (held-out predictions), and
the MAD outlier rule written out with the standard library's median.
"""
import statistics

import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceRelabeler, InfluenceReweighter, InfluenceTrimmer
from skinfluence.cleaning._target_noise import find_target_issues, robust_z

ESTIMATORS = [InfluenceTrimmer, InfluenceReweighter, InfluenceRelabeler]


def _data(n=120, seed=0, shift=0.0, n_bad=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 1.0 + rng.normal(scale=0.5, size=n)
    bad = rng.choice(n, n_bad, replace=False)
    y_obs = y.copy()
    y_obs[bad] += shift * rng.choice([-1.0, 1.0], size=n_bad)
    return X, y, y_obs, bad


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_around_a_regressor_it_is_a_regressor_scored_by_r2(cls):
    X, y, y_obs, _ = _data(shift=6.0, n_bad=12)
    est = cls(Ridge(alpha=1.0), random_state=0).fit(X, y_obs)
    assert is_regressor(est) and not is_classifier(est)
    assert est.score(X, y) == pytest.approx(r2_score(y, est.estimator_.predict(X)), rel=1e-12)
    np.testing.assert_array_equal(est.predict(X), est.estimator_.predict(X))
    assert not hasattr(est, "classes_")


def test_grid_search_and_pipeline_with_regression_scorers():
    X, _, y_obs, _ = _data(seed=1, shift=6.0, n_bad=12)
    pipe = make_pipeline(StandardScaler(), InfluenceTrimmer(Ridge(), random_state=0))
    search = GridSearchCV(pipe, {"influencetrimmer__fraction": [0.0, 0.1]}, cv=3,
                          scoring="neg_mean_squared_error").fit(X, y_obs)
    assert set(search.cv_results_["param_influencetrimmer__fraction"]) == {0.0, 0.1}
    assert np.all(search.cv_results_["mean_test_score"] < 0)  # an MSE, not an accuracy
    trimmed = search.best_estimator_[-1]
    assert trimmed.n_trimmed_ == int(np.floor(trimmed.fraction * len(y_obs) + 1e-9))


def test_sample_weight_is_routed_to_the_regressor():
    X, _, y_obs, _ = _data(seed=2)
    sw = np.random.RandomState(0).uniform(0.5, 2.0, size=len(y_obs))
    with config_context(enable_metadata_routing=True):
        est = InfluenceReweighter(Ridge().set_fit_request(sample_weight=True), random_state=0)
        est.fit(X, y_obs, sample_weight=sw)
    want = Ridge().fit(X, y_obs, sample_weight=est.weights_ * sw)
    np.testing.assert_allclose(est.estimator_.coef_, want.coef_, rtol=1e-10)


@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_trimming_a_regressor_does_not_keep_one_row_per_target_value(fraction):
    """Real targets are not classes: exactly floor(fraction n) rows go."""
    X, _, y_obs, _ = _data(n=40, seed=3)
    est = InfluenceTrimmer(Ridge(), fraction=fraction, random_state=0).fit(X, y_obs)
    assert est.n_trimmed_ == int(fraction * 40)
    kept = est.scores_[est.support_]
    assert np.nanmin(kept) >= np.nanmax(est.scores_[~est.support_])


def test_trimming_one_row_with_newton_loo_drops_the_best_leave_one_out_refit():
    """NewtonLOO is exact for Ridge: the row trimmed is argmin of J(theta_-i) by refits."""
    X, _, y_obs, _ = _data(n=50, seed=4, shift=5.0, n_bad=3)
    Xv, yv = X[:0] + 0, y_obs[:0]
    rng = np.random.RandomState(9)
    Xv = rng.normal(size=(30, 4))
    yv = Xv @ np.array([1.0, -2.0, 0.5, 0.0]) + 1.0
    est = InfluenceTrimmer(Ridge(alpha=2.0, solver="cholesky"), method="newton_loo",
                           fraction=1 / 50).fit(X, y_obs, X_val=Xv, y_val=yv)
    loo = [np.mean(0.5 * (Ridge(alpha=2.0, solver="cholesky").fit(
        np.delete(X, i, 0), np.delete(y_obs, i)).predict(Xv) - yv) ** 2) for i in range(50)]
    assert np.flatnonzero(~est.support_).tolist() == [int(np.argmin(loo))]


def _held_out_predictions(X, y, splits, refine=True):
    """Fold predictions; ``refine``: again, the first round's MAD outliers left out."""
    pred = np.empty(len(y))
    for train, test in splits:
        pred[test] = Ridge().fit(X[train], y[train]).predict(X[test])
    if not refine:
        return pred
    r = y - pred
    med = statistics.median(r.tolist())
    mad = statistics.median([abs(v - med) for v in r.tolist()])
    out = np.abs(r - med) / (1.4826 * mad) > 3.5
    for train, test in splits:
        keep = train[~out[train]]
        pred[test] = Ridge().fit(X[keep], y[keep]).predict(X[test])
    return pred


def _mad_count(residuals, z):
    med = statistics.median(residuals.tolist())
    mad = statistics.median([abs(r - med) for r in residuals.tolist()])
    return sum(abs(r - med) / (1.4826 * mad) > z for r in residuals.tolist())


@pytest.mark.parametrize("n_bad", [0, 10, 25])
def test_auto_fraction_counts_outlying_held_out_residuals(n_bad):
    X, _, y_obs, bad = _data(n=100, seed=5, shift=8.0, n_bad=n_bad)
    splits = list(KFold(4, shuffle=True, random_state=0).split(X))
    pred = _held_out_predictions(X, y_obs, splits)
    count = _mad_count(y_obs - pred, 3.5)
    est = InfluenceTrimmer(Ridge(), fraction="auto", cv=splits).fit(X, y_obs)
    assert est.noise_rate_ == pytest.approx(count / 100)
    # acted on only when the nested check says so (tests/cleaning/test_nested_check.py)
    assert est.n_trimmed_ == (count if est.refit_check_["acted"] else 0)
    assert est.refit_check_["candidates"] == count
    rel = InfluenceRelabeler(Ridge(), fraction="auto", cv=splits).fit(X, y_obs)
    # each replaced target is the prediction of the fold model that held it out
    np.testing.assert_allclose(rel.y_relabeled_[rel.relabeled_], pred[rel.relabeled_],
                               rtol=1e-10)
    np.testing.assert_array_equal(rel.y_relabeled_[~rel.relabeled_], y_obs[~rel.relabeled_])
    assert rel.n_relabeled_ == (count if rel.refit_check_["acted"] else 0)


def test_robust_z_and_the_count_rule_on_constructed_residuals():
    """Bounded noise (z <= 1 / (1.4826 * 0.5) < 3.5) plus planted shifts: counted exactly."""
    rng = np.random.RandomState(0)
    r = rng.uniform(-1, 1, size=400)
    z = robust_z(r)
    med = statistics.median(r.tolist())
    mad = statistics.median([abs(v - med) for v in r.tolist()])
    np.testing.assert_allclose(z, np.abs(r - med) / (1.4826 * mad), rtol=1e-12)
    assert find_target_issues(np.zeros(400), np.zeros(400), r, np.ones(400, bool)).noise_rate == 0
    planted = rng.choice(400, 20, replace=False)
    r[planted] += rng.choice([-1.0, 1.0], 20) * rng.uniform(10, 30, 20)
    issues = find_target_issues(-np.abs(r), np.zeros(400), r, np.ones(400, bool))
    assert issues.noise_rate == pytest.approx(20 / 400)
    assert set(issues.ranked[:20].tolist()) == set(planted.tolist())
    active = np.ones(400, bool)
    active[planted[:5]] = False  # inactive rows are neither counted nor ranked
    part = find_target_issues(-np.abs(r), np.zeros(400), r, active)
    assert part.noise_rate == pytest.approx(15 / 395)
    assert not np.isin(planted[:5], part.ranked).any()
    # equal z (a zero MAD puts every off-median row at infinity): the lowest score first
    flat = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 5.0, -5.0])
    tied = find_target_issues(np.array([0, 0, 0, 0, 0, 2.0, -1.0]), np.zeros(7), flat,
                              np.ones(7, bool))
    assert tied.ranked[:2].tolist() == [6, 5] and tied.noise_rate == pytest.approx(2 / 7)


def test_regression_inputs_are_checked():
    X, _, y_obs, _ = _data(n=30, seed=6)
    with pytest.raises(ValueError, match="y must hold real-valued targets"):
        InfluenceTrimmer(Ridge()).fit(X, np.array(["a"] * 30, dtype=object))
    with pytest.raises(ValueError, match="target_gap .* regressor"):
        InfluenceTrimmer(Ridge(), objective="demographic_parity", target_gap=0.1,
                         sensitive_feature=0).fit(X, y_obs)
    bad = y_obs.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        InfluenceTrimmer(Ridge()).fit(X, y_obs, X_val=X, y_val=bad)
    before = y_obs.copy()
    est = clone(InfluenceRelabeler(Ridge(), fraction=0.2, random_state=0)).fit(X, y_obs)
    np.testing.assert_array_equal(y_obs, before)  # the caller's targets are not changed
    assert est.n_relabeled_ == 6


@pytest.mark.parametrize("n_issues", ["auto", 4, 0.1])
def test_find_label_issues_on_a_regressor_flags_outlying_held_out_residuals(n_issues):
    from skinfluence import find_label_issues

    X, _, y_obs, _ = _data(n=80, seed=11, shift=8.0, n_bad=6)
    splits = list(KFold(4, shuffle=True, random_state=0).split(X))
    r = y_obs - _held_out_predictions(X, y_obs, splits)
    med = statistics.median(r.tolist())
    z = np.abs(r - med) / (1.4826 * statistics.median([abs(v - med) for v in r.tolist()]))
    count = {"auto": _mad_count(r, 3.5), 4: 4, 0.1: 8}[n_issues]
    got = find_label_issues(Ridge(), X, y_obs, n_issues=n_issues, cv=splits,
                            return_indices=True)
    np.testing.assert_array_equal(got, np.argsort(-z, kind="stable")[:count])
    mask = find_label_issues(Ridge(), X, y_obs, n_issues=n_issues, cv=splits)
    assert mask.sum() == count and set(np.flatnonzero(mask)) == set(got.tolist())


@pytest.mark.parametrize("kwargs, match", [({"trusted": "bogus"}, "trusted must be"),
                                           ({"cv": []}, "gave no")])
def test_regression_cross_fitting_checks_its_arguments(kwargs, match):
    from sklearn.linear_model import Ridge

    from skinfluence import find_label_issues

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, 2.0, -1.0] + 0.1 * rng.normal(size=40)
    with pytest.raises(ValueError, match=match):
        find_label_issues(Ridge(), X, y, **kwargs)
