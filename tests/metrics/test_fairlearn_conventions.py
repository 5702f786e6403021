"""fairlearn's conventions: intersectional groups, method= / agg=, MetricFrame.

References: fairlearn itself (a dev dependency) and the definitions written
out in numpy here.
"""
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluenceReweighter, InfluenceTrimmer
from skinfluence.metrics import (demographic_parity_difference, equalized_odds_difference,
                                 fairness_report)

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    n = 400
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], n),
                           "race": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})
    y_true = rng.integers(0, 2, n)
    bias = (groups.sex == "M").to_numpy() * 0.2 + (groups.race == "c").to_numpy() * 0.15
    y_pred = (rng.random(n) < 0.35 + bias).astype(int)
    return y_true, y_pred, groups


def _rates(hit, rows, groups):
    """Each intersectional group's rate of ``hit`` over ``rows``, from the definition."""
    out = {}
    for key, index in groups.groupby(["sex", "race"]).groups.items():
        mask = np.zeros(len(hit), bool)
        mask[np.asarray(index)] = True
        if (mask & rows).any():
            out[key] = hit[mask & rows].mean()
    return out


def test_intersectional_report_equals_fairlearns_metric_frame(predictions):
    y_true, y_pred, groups = predictions
    report = fairness_report(y_true, y_pred, sensitive_features=groups)
    assert len(report) == 6 and report.index[0] == "sex=F, race=a"
    frame = fairness_report(y_true, y_pred, sensitive_features=groups, as_metric_frame=True)
    assert isinstance(frame, fairlearn_metrics.MetricFrame)
    by_group = frame.by_group  # MultiIndex (sex, race), in the same sorted order
    for column in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"):
        np.testing.assert_allclose(report[column].to_numpy(), by_group[column].to_numpy())
    np.testing.assert_array_equal(report["count"].to_numpy(), by_group["count"].to_numpy())


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_intersectional_differences_follow_their_definitions(predictions, method):
    y_true, y_pred, groups = predictions
    hit = y_pred == 1

    def spread(rows):
        rates = np.array(list(_rates(hit, rows, groups).values()))
        if method == "between_groups":
            return rates.max() - rates.min()
        return np.abs(rates - hit[rows].mean()).max()

    every = np.ones(len(hit), bool)
    assert demographic_parity_difference(y_true, y_pred, sensitive_features=groups,
                                         method=method) == pytest.approx(spread(every))
    tpr, fpr = spread(y_true == 1), spread(y_true == 0)
    for agg, expected in (("worst_case", max(tpr, fpr)), ("mean", (tpr + fpr) / 2)):
        got = equalized_odds_difference(y_true, y_pred, sensitive_features=groups,
                                        method=method, agg=agg)
        assert got == pytest.approx(expected)


@pytest.mark.parametrize("bad, match", [({"method": "largest"}, "method must be one of"),
                                        ({"agg": "median"}, "agg must be")])
def test_unknown_method_or_agg_is_named(predictions, bad, match):
    y_true, y_pred, groups = predictions
    with pytest.raises(ValueError, match=match):
        equalized_odds_difference(y_true, y_pred, sensitive_features=groups, **bad)


def test_a_two_column_attribute_works_in_the_estimators_as_its_combined_column(predictions):
    _, _, groups = predictions
    rng = np.random.default_rng(1)
    X = rng.normal(size=(len(groups), 3))
    X[:, 0] += (groups.sex == "M").to_numpy()
    y = (X[:, 0] + 0.5 * rng.normal(size=len(X)) > 0.5).astype(int)
    combined = ("sex=" + groups.sex + ", race=" + groups.race).to_numpy()
    for cls in (InfluenceTrimmer, InfluenceReweighter):
        kw = dict(objective="demographic_parity", cv=3, random_state=0)
        two = cls(LogisticRegression(), **kw).fit(X, y, sensitive_features=groups)
        one = cls(LogisticRegression(), **kw).fit(X, y, sensitive_features=combined)
        np.testing.assert_allclose(two.scores_, one.scores_, rtol=1e-10)
    # a missing value in either column keeps its own clear error
    holes = groups.assign(race=groups.race.where(np.arange(len(groups)) != 5))
    with pytest.raises(ValueError, match="missing"):
        fairness_report(y, y, sensitive_features=holes)


def test_a_group_without_weight_has_no_rate(predictions):
    from skinfluence.metrics import fairness_gap

    y_true, y_pred, groups = predictions
    s = groups.sex.to_numpy().astype(object)
    s[:30] = "X"  # a third group, all of whose rows weigh nothing
    w = np.ones(len(s))
    w[:30] = 0.0
    got = fairness_gap("demographic_parity", y_true, y_pred, s, sample_weight=w)
    ref = fairness_gap("demographic_parity", y_true[30:], y_pred[30:], s[30:])
    assert got == pytest.approx(ref)
