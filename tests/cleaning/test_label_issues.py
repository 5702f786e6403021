"""find_label_issues: the trimmer's flags without the refit."""
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluenceTrimmer, find_label_issues
from skinfluence.datasets import flip_labels


@pytest.fixture(scope="module")
def noisy():
    X, y = make_classification(300, n_features=6, n_informative=4, class_sep=1.5,
                               random_state=5)
    y_noisy, flipped = flip_labels(y, 0.2, random_state=5)
    return X, y_noisy, flipped


@pytest.mark.parametrize("method", ["ip", "exact_hessian"])
def test_flags_equal_the_auto_trimmer_drops(method):
    # 3 classes, 15% of the labels moved to the next class: the refit check acts
    X, y = make_classification(450, n_features=6, n_informative=4, n_classes=3,
                               n_clusters_per_class=1, class_sep=1.5, random_state=0)
    flipped = np.zeros(len(y), dtype=bool)
    flipped[np.random.RandomState(0).choice(len(y), 67, replace=False)] = True
    y = np.where(flipped, (y + 1) % 3, y)
    mask = find_label_issues(LogisticRegression(), X, y, method=method, random_state=0)
    trim = InfluenceTrimmer(LogisticRegression(), method=method, fraction="auto",
                            random_state=0).fit(X, y)
    assert trim.refit_check_["acted"]
    np.testing.assert_array_equal(mask, ~trim.support_)
    ranked = find_label_issues(LogisticRegression(), X, y, method=method, random_state=0,
                               return_indices=True)
    np.testing.assert_array_equal(np.sort(ranked), np.flatnonzero(mask))
    assert flipped[mask].mean() > 0.8


def test_counts_shares_and_ranked_indices(noisy):
    X, y, flipped = noisy
    ranked = find_label_issues(LogisticRegression(), X, y, n_issues=40, return_indices=True,
                               random_state=0)
    assert len(ranked) == 40 and len(set(ranked)) == 40
    mask = find_label_issues(LogisticRegression(), X, y, n_issues=0.1, random_state=0)
    assert mask.sum() == 30
    np.testing.assert_array_equal(np.flatnonzero(mask), np.sort(ranked[:30]))  # a prefix
    # the first flags are the surest: more of them are real flips than of the later ones
    assert flipped[ranked[:20]].mean() >= flipped[ranked[20:]].mean()


def test_trusted_none_uses_every_held_out_row(noisy):
    X, y, flipped = noisy
    trusted = find_label_issues(LogisticRegression(), X, y, n_issues=60, random_state=0)
    every = find_label_issues(LogisticRegression(), X, y, n_issues=60, trusted=None,
                              random_state=0)
    assert not np.array_equal(trusted, every)
    assert flipped[trusted].mean() >= flipped[every].mean()


def test_zero_weight_rows_are_never_flagged(noisy):
    X, y, _ = noisy
    w = np.ones(len(y))
    w[:50] = 0
    mask = find_label_issues(LogisticRegression(), X, y, sample_weight=w, n_issues=0.5,
                             random_state=0)
    assert not mask[:50].any() and mask.sum() == 125


@pytest.mark.parametrize("bad", ["most", -1, 1.5, 10_000, True])
def test_bad_n_issues_is_a_clear_error(noisy, bad):
    X, y, _ = noisy
    with pytest.raises(ValueError, match="n_issues"):
        find_label_issues(LogisticRegression(), X, y, n_issues=bad)


def test_report_keeps_the_callers_index(noisy):
    X, y, _ = noisy
    index = pd.Index([f"row{i}" for i in range(len(y))][::-1], name="id")
    frame = pd.DataFrame(X, index=index, columns=[f"f{j}" for j in range(X.shape[1])])
    trim = InfluenceTrimmer(LogisticRegression(), fraction="auto", random_state=0)
    trim.fit(frame, pd.Series(y, index=index))
    report = trim.report(frame, pd.Series(y, index=index))
    assert report.index.equals(index)
    assert report.loc["row299", "label"] == y[0]
    # a numpy X with a pandas y: y's index
    trim.fit(X, pd.Series(y, index=index))
    assert trim.report().index.equals(index)
    assert InfluenceTrimmer(LogisticRegression()).fit(X, y).report().index.equals(
        pd.RangeIndex(len(y)))


@pytest.mark.parametrize("trusted", ["banana", "Agree", "", 0, False, True, ["agree"]])
def test_trusted_accepts_only_the_documented_values(noisy, trusted):
    X, y, _ = noisy
    with pytest.raises(ValueError, match=r"trusted must be 'agree' or None, got "):
        find_label_issues(LogisticRegression(), X, y, trusted=trusted)


def test_auto_flags_nothing_when_the_refit_check_declines():
    # labels drawn from a logistic model: none is wrong, about 9% look wrong to the folds
    # (the trimmer's clean-data test measures this construction over 10 seeds)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 5))
    y = (rng.uniform(size=600) < 1 / (1 + np.exp(-X @ [1.5, -1.0, 0.5, 0.0, 0.0]))).astype(int)
    mask = find_label_issues(LogisticRegression(), X, y, random_state=0)
    ranked = find_label_issues(LogisticRegression(), X, y, random_state=0, return_indices=True)
    assert not mask.any() and len(ranked) == 0
    some = find_label_issues(LogisticRegression(), X, y, n_issues=30, random_state=0)
    assert some.sum() == 30  # a number given is a number flagged, check or not
