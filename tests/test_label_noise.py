"""Label-noise estimation and ranking (``fraction="auto"``), against independent constructions."""
import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluenceRelabeler, InfluenceTrimmer
from skinfluence._label_noise import (confident_joint, estimate_noise_rate, memorised_share,
                                      rank_label_issues)
from skinfluence.datasets import flip_labels


def _joint_by_loops(P, y):
    """Confident joint written row by row from its definition (Northcutt et al., 2021)."""
    K = P.shape[1]
    t = [np.mean([P[i, j] for i in range(len(y)) if y[i] == j]) for j in range(K)]
    C = np.zeros((K, K))
    for i in range(len(y)):
        cands = [j for j in range(K) if P[i, j] >= t[j]]
        if cands:
            C[y[i], max(cands, key=lambda j: P[i, j])] += 1
    return C


@pytest.mark.parametrize("n_classes", [2, 4])
def test_confident_joint_matches_its_definition(n_classes):
    rng = np.random.default_rng(n_classes)
    P = rng.dirichlet(np.ones(n_classes), size=200)
    y = rng.integers(0, n_classes, size=200)
    np.testing.assert_allclose(confident_joint(P, y), _joint_by_loops(P, y), atol=1e-12)
    off = _joint_by_loops(P, y)
    assert estimate_noise_rate(P, y) == pytest.approx((off.sum() - np.trace(off)) / len(y))


def test_rank_is_the_mean_of_the_two_ranks_and_unscored_rows_are_left_out():
    scores = np.array([0.5, -1.0, np.nan, 0.1, -0.2])
    P = np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5], [0.3, 0.7], [0.8, 0.2]])
    y = np.array([0, 0, 1, 0, 1])
    # ranks among the scored rows 0, 1, 3, 4: by score 4, 1, 3, 2; by self-confidence
    # (0.9, 0.4, 0.3, 0.2) 4, 3, 2, 1 -> sums 8, 4, 5, 3
    np.testing.assert_array_equal(rank_label_issues(scores, P, y), [4, 1, 3, 0])
    np.testing.assert_array_equal(rank_label_issues(scores, None, y), [1, 4, 3, 0])


def test_estimated_noise_rate_rises_with_the_true_one():
    X, y = make_classification(600, n_features=8, n_informative=6, class_sep=2.0,
                               random_state=0)
    estimates = []
    for rate in (0.0, 0.1, 0.2, 0.3):
        y_noisy = flip_labels(y, rate, random_state=1)[0] if rate else y
        trim = InfluenceTrimmer(LogisticRegression(), fraction="auto", random_state=0)
        estimates.append(trim.fit(X, y_noisy).noise_rate_)
        assert abs(trim.noise_rate_ - rate) < 0.06
        assert trim.n_trimmed_ == round(trim.noise_rate_ * len(y))
    assert np.all(np.diff(estimates) > 0.05)


def test_auto_trims_the_lowest_combined_rank_and_finds_the_flips():
    X, y = make_classification(400, n_features=6, n_informative=4, class_sep=2.0,
                               random_state=4)
    y_noisy, flipped = flip_labels(y, 0.2, random_state=4)
    trim = InfluenceTrimmer(LogisticRegression(), fraction="auto", random_state=0)
    trim.fit(X, y_noisy)
    fixed = InfluenceTrimmer(LogisticRegression(), fraction=0.2, random_state=0)
    fixed.fit(X, y_noisy)
    np.testing.assert_array_equal(trim.scores_, fixed.scores_)  # same scoring, other action
    assert fixed.noise_rate_ is None
    # held-out probabilities written independently: the same folds, refitted here
    P = _held_out_proba(trim, X, y_noisy)
    key = rankdata(trim.scores_) + rankdata(P[np.arange(len(y)), y_noisy])
    expected = np.argsort(key, kind="stable")[:trim.n_trimmed_]
    np.testing.assert_array_equal(np.flatnonzero(~trim.support_), np.sort(expected))
    assert flipped[~trim.support_].mean() > 0.9  # precision (base rate 0.2)
    assert flipped[~trim.support_].sum() > 0.8 * flipped.sum()  # recall


def _held_out_proba(trim, X, y, model=None):
    from sklearn.model_selection import StratifiedKFold
    from sklearn.utils import check_random_state

    rng = check_random_state(trim.random_state)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    P = np.zeros((len(y), 2))
    for tr, va in StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y):
        P[va] = (model or LogisticRegression()).fit(X[tr], y[tr]).predict_proba(X[va])
    return P


def test_auto_relabeler_repairs_labels():
    X, y = make_classification(400, n_features=6, n_informative=4, class_sep=1.5,
                               random_state=4)
    y_noisy, flipped = flip_labels(y, 0.15, random_state=4)
    rel = InfluenceRelabeler(LogisticRegression(), fraction="auto", random_state=0)
    rel.fit(X, y_noisy)
    assert rel.n_relabeled_ == rel.relabeled_.sum() > 0
    assert abs(rel.noise_rate_ - 0.15) < 0.06
    assert (rel.y_relabeled_ == y).mean() > (y_noisy == y).mean() + 0.1


@pytest.mark.parametrize("objective", ["demographic_parity", "adversarial_robustness"])
def test_auto_needs_the_utility_objective(objective):
    X, y = make_classification(100, random_state=0)
    with pytest.raises(ValueError, match="fraction='auto'.*utility"):
        InfluenceTrimmer(LogisticRegression(), objective=objective, fraction="auto",
                         sensitive_feature=0).fit(X, y)


def test_threshold_overrides_auto():
    X, y = make_classification(200, random_state=0)
    trim = InfluenceTrimmer(LogisticRegression(), fraction="auto", threshold=0.0,
                            random_state=0).fit(X, y)
    assert trim.noise_rate_ is None
    np.testing.assert_array_equal(~trim.support_, trim.scores_ < 0)


def test_memorised_share_is_the_fitted_share_of_the_doubted_rows():
    P = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    y = np.array([0, 0, 1, 1, 0])
    fitted = np.array([1.0, 0.75, 0.25, 1.0, np.nan])
    # doubted (held-out argmax != label) and scored: rows 1 and 2
    assert memorised_share(P, y, fitted) == pytest.approx((0.75 + 0.25) / 2)
    assert memorised_share(P, np.argmax(P, axis=1), fitted) == 0.0  # nothing doubted


def test_a_memorising_model_is_ranked_by_held_out_confidence_alone():
    """More features than rows and almost no penalty: every training label is fitted,
    so the in-sample influence of a wrong label is tiny; the ranking drops it."""
    X, y = make_classification(120, n_features=200, n_informative=10, class_sep=2.0,
                               random_state=0)
    y_noisy, flipped = flip_labels(y, 0.2, random_state=0)
    model = LogisticRegression(C=1e4, max_iter=5000)
    trim = InfluenceTrimmer(model, fraction="auto", random_state=0).fit(X, y_noisy)
    assert trim.memorised_share_ > 0.9
    P = _held_out_proba(trim, X, y_noisy, model)
    order = np.argsort(P[np.arange(len(y)), y_noisy], kind="stable")
    np.testing.assert_array_equal(np.flatnonzero(~trim.support_),
                                  np.sort(order[:trim.n_trimmed_]))
    # with few features the model cannot fit the wrong labels: the influence rank stays
    X, y = make_classification(400, n_features=6, n_informative=4, class_sep=2.0,
                               random_state=4)
    y_noisy, _ = flip_labels(y, 0.2, random_state=4)
    kept = InfluenceTrimmer(model, fraction="auto", random_state=0).fit(X, y_noisy)
    assert kept.memorised_share_ < 0.5
