"""Fairness: target_gap rounds of the estimators, multi-group gaps, metrics vs fairlearn."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skinfluence import (DemographicParity, EqualizedOdds, InfluenceRelabeler,
                         InfluenceReweighter, InfluenceTrimmer)


def biased(n, seed, n_groups=2):
    """Labels recorded against group 0 (20% of its positives turned negative)."""
    rng = np.random.RandomState(seed)
    s = rng.randint(n_groups, size=n) if n_groups > 2 else (rng.uniform(size=n) < 0.6) * 1
    X = rng.normal(size=(n, 4))
    X[:, 0] += 0.3 * (s > 0)
    y = (X @ np.array([1.0, 0.7, -0.5, 0.3]) + rng.normal(scale=0.5, size=n) > 0.2) * 1
    y[(s == 0) & (y == 1) & (rng.uniform(size=n) < 0.2)] = 0
    return np.column_stack([X, s]), y, s


def hard_gap(kind, y, pred, s):
    """The metric from its definition: largest minus smallest group rate (per cell)."""
    cells = [np.ones(len(y), bool)] if kind == "dp" else [y == 1, y == 0]
    gaps = []
    for rows in cells:
        rates = [np.mean(pred[rows & (s == g)] == 1) for g in np.unique(s)]
        gaps.append(max(rates) - min(rates))
    return max(gaps)


@pytest.fixture(scope="module")
def data():
    X, y, s = biased(1500, 0)
    X_val, y_val, s_val = biased(1500, 1)
    return X, y, s, X_val, y_val, s_val


@pytest.mark.parametrize("cls", [InfluenceTrimmer, InfluenceReweighter, InfluenceRelabeler])
@pytest.mark.parametrize("target", [0.06, 0.02])
def test_rounds_stop_at_the_target_on_validation_data(data, cls, target):
    X, y, s, X_val, y_val, s_val = data
    plain = LogisticRegression().fit(X, y).predict(X_val)
    assert hard_gap("dp", y_val, plain, s_val) > 0.12  # the bias is there to remove
    est = cls(LogisticRegression(), objective="demographic_parity", target_gap=target,
              random_state=0).fit(X, y, sensitive_features=s, X_val=X_val, y_val=y_val,
                                  sensitive_features_val=s_val)
    assert est.target_reached_
    # the final model is the one the last round measured: its gap on X_val, recomputed
    gap = hard_gap("dp", y_val, est.predict(X_val), s_val)
    assert gap == pytest.approx(est.validation_gap_)
    assert target - 0.01 <= gap <= target
    assert est.gap_path_[0]["knob"] == 0 and len(est.gap_path_) <= 1 + est.max_rounds


def test_tolerance_and_max_rounds_are_respected(data):
    X, y, s, X_val, y_val, s_val = data
    fit = dict(sensitive_features=s, X_val=X_val, y_val=y_val, sensitive_features_val=s_val)
    wide = InfluenceTrimmer(LogisticRegression(), objective="demographic_parity", target_gap=0.05,
                            gap_tolerance=0.05, random_state=0).fit(X, y, **fit)
    assert wide.target_reached_ and 0.0 <= wide.validation_gap_ <= 0.05
    with pytest.warns(RuntimeWarning, match="not reached within max_rounds=1"):
        short = InfluenceTrimmer(LogisticRegression(), objective="demographic_parity",
                                 target_gap=0.01, gap_tolerance=0.001, max_rounds=1,
                                 random_state=0).fit(X, y, **fit)
    assert not short.target_reached_ and len(short.gap_path_) == 2


def test_cross_fitted_rounds_reach_the_target_and_the_test_gap_follows():
    X, y, s = biased(3000, 2)
    X_te, y_te, s_te = biased(3000, 3)
    est = InfluenceTrimmer(LogisticRegression(), objective=DemographicParity(), target_gap=0.04,
                           random_state=0).fit(X, y, sensitive_features=s)
    assert est.target_reached_ and 0.03 <= est.validation_gap_ <= 0.04
    assert abs(hard_gap("dp", y_te, est.predict(X_te), s_te) - 0.04) <= 0.03
    assert 0 < est.n_trimmed_ < 0.5 * len(y)


def test_multi_group_target_is_the_largest_pairwise_gap():
    X, y, s = biased(3000, 4, n_groups=3)
    X_val, y_val, s_val = biased(3000, 5, n_groups=3)
    est = InfluenceReweighter(LogisticRegression(), objective="demographic_parity",
                              target_gap=0.03, random_state=0)
    est.fit(X, y, sensitive_features=s, X_val=X_val, y_val=y_val, sensitive_features_val=s_val)
    gap = hard_gap("dp", y_val, est.predict(X_val), s_val)
    assert est.target_reached_ and gap == pytest.approx(est.validation_gap_)
    assert gap <= 0.03


def test_equalized_odds_target_reads_the_given_labels(data):
    import warnings
    X, y, s, X_val, y_val, s_val = data
    est = InfluenceTrimmer(LogisticRegression(), objective=EqualizedOdds(), target_gap=0.05,
                           max_rounds=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # reaching it is not the point here
        est.fit(X, y, sensitive_features=s, X_val=X_val, y_val=y_val,
                sensitive_features_val=s_val)
    assert est.validation_gap_ == pytest.approx(hard_gap("eo", y_val, est.predict(X_val), s_val))


def test_target_gap_errors(data):
    X, y, s, *_ = data
    with pytest.raises(ValueError, match="target_gap is a fairness gap"):
        InfluenceTrimmer(LogisticRegression(), target_gap=0.05).fit(X, y)
    with pytest.raises(ValueError, match="target_gap"):
        InfluenceTrimmer(LogisticRegression(), objective="demographic_parity",
                         target_gap=1.5).fit(X, y, sensitive_features=s)
    y3 = y + (X[:, 1] > 1)
    with pytest.raises(ValueError, match="binary target"):
        InfluenceTrimmer(LogisticRegression(), objective=DemographicParity(positive_class=1),
                         target_gap=0.05).fit(X, y3, sensitive_features=s)


def test_fairness_objectives_score_against_every_held_out_row(data):
    """trusted='agree' keeps only rows the fold model predicts right: that would bias the
    groups' rates, so fairness objectives ignore it (scores identical with trusted=None)."""
    X, y, s, *_ = data
    for objective in (DemographicParity(), EqualizedOdds()):
        a = InfluenceTrimmer(LogisticRegression(), objective=objective, trusted="agree",
                             random_state=0).fit(X, y, sensitive_features=s)
        b = InfluenceTrimmer(LogisticRegression(), objective=objective, trusted=None,
                             random_state=0).fit(X, y, sensitive_features=s)
        np.testing.assert_array_equal(a.scores_, b.scores_)
