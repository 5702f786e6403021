"""Fairness metrics and scorers: fairlearn's values, fallback, GridSearchCV use."""
import builtins

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from skinfluence import InfluenceTrimmer
from skinfluence import metrics
from skinfluence.metrics import (DemographicParityScorer, demographic_parity_difference,
                                 demographic_parity_scorer, fairness_scoring,
                                 selection_rate_by_group)


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    with threadpool_limits(1):
        yield


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4))
    s = (rng.uniform(size=300) < 0.5).astype(int)
    X[:, 0] = s
    y = (X[:, 1] + 0.8 * s + 0.3 * rng.normal(size=300) > 0.4).astype(int)
    return X, y, s


def _without_fairlearn(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("fairlearn"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_selection_rates_and_gap():
    rates = selection_rate_by_group([1, 1, 0, 0, 1, 0], [0, 0, 0, 1, 1, 1])
    assert rates == pytest.approx({0: 2 / 3, 1: 1 / 3})
    gap = demographic_parity_difference(None, [1, 1, 0, 0, 1, 0],
                                        sensitive_features=[0, 0, 0, 1, 1, 1])
    assert gap == pytest.approx(1 / 3)


def test_fallback_equals_fairlearn(data, monkeypatch):
    fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
    X, y, s = data
    pred = (X[:, 1] > 0).astype(int)
    w = np.linspace(0.2, 2.0, len(y))
    expected = fairlearn_metrics.demographic_parity_difference(y, pred, sensitive_features=s,
                                                               sample_weight=w)
    _without_fairlearn(monkeypatch)
    got = demographic_parity_difference(y, pred, sensitive_features=s, sample_weight=w)
    assert got == pytest.approx(expected)


def test_column_scorer_is_the_negated_gap(data):
    X, y, s = data
    model = LogisticRegression().fit(X, y)
    gap = demographic_parity_difference(y, model.predict(X), sensitive_features=s)
    assert gap > 0.1
    assert DemographicParityScorer(0)(model, X, y) == pytest.approx(-gap)
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["sex", "a", "b", "c"])
    model_df = LogisticRegression().fit(df, y)
    assert demographic_parity_scorer("sex")(model_df, df, y) == pytest.approx(-gap)
    with pytest.raises(TypeError, match="column name or index"):
        DemographicParityScorer(1.5)


def test_gridsearch_with_accuracy_and_dp_gap(data):
    X, y, s = data
    search = GridSearchCV(
        InfluenceTrimmer(LogisticRegression(), objective="demographic_parity",
                         sensitive_feature=0, validation=3, random_state=0),
        {"fraction": [0.0, 0.2]}, scoring=fairness_scoring(0), refit="accuracy", cv=3,
    ).fit(X, y)
    dp = search.cv_results_["mean_test_dp_gap"]
    assert np.all(dp <= 0)
    assert dp[1] > dp[0]  # trimming 20% by DP influence shrinks the gap


def test_routed_scorer_receives_the_sensitive_features(data):
    X, y, s = data
    grid = {"fraction": [0.0, 0.2]}
    kw = dict(objective="demographic_parity", validation=3, random_state=0)
    ref = GridSearchCV(InfluenceTrimmer(LogisticRegression(), sensitive_feature=0, **kw), grid,
                       scoring=fairness_scoring(0), refit="accuracy", cv=3).fit(X, y)
    with sklearn.config_context(enable_metadata_routing=True):
        trimmer = InfluenceTrimmer(LogisticRegression(), **kw)
        trimmer.set_fit_request(sensitive_features=True)
        search = GridSearchCV(trimmer, grid, scoring=fairness_scoring(), refit="accuracy",
                              cv=3).fit(X, y, sensitive_features=s)
    np.testing.assert_allclose(search.cv_results_["mean_test_dp_gap"],
                               ref.cv_results_["mean_test_dp_gap"])
    np.testing.assert_allclose(search.cv_results_["mean_test_accuracy"],
                               ref.cv_results_["mean_test_accuracy"])


def test_module_exports():
    assert set(metrics.__all__) >= {"demographic_parity_difference", "fairness_scoring"}
