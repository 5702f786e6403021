"""find_label_issues in cleanlab's calling convention, against cleanlab itself."""
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import scale

from skinfluence import find_label_issues
from skinfluence.cleaning._cleanlab_filters import (confident_joint, prune_counts,
                                                    round_preserving_sum)
from skinfluence.cleaning._precomputed_issues import ROW_SUM_TOL
from skinfluence.datasets import flip_labels

cleanlab_filter = pytest.importorskip("cleanlab.filter")
cleanlab_rank = pytest.importorskip("cleanlab.rank")

FILTERS = ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
           "predicted_neq_given"]
RANKINGS = [None, "self_confidence", "normalized_margin"]


def assert_same_as_cleanlab(labels, P, filter_by, ranked_by=None):
    """Masks equal as arrays; ranked indices equal as sets, in cleanlab's quality order.

    cleanlab's ranking argsort is not stable, so among rows of equal quality
    the order is compared only through the quality being non-decreasing.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn on single-row classes; tested below
        ours = find_label_issues(labels=labels, pred_probs=P, filter_by=filter_by,
                                 return_indices_ranked_by=ranked_by)
        theirs = cleanlab_filter.find_label_issues(labels, P, filter_by=filter_by, n_jobs=1,
                                                   return_indices_ranked_by=ranked_by)
    if ranked_by is None:
        np.testing.assert_array_equal(ours, theirs, err_msg=filter_by)
        return ours
    assert sorted(ours.tolist()) == sorted(theirs.tolist()), (filter_by, ranked_by)
    quality = cleanlab_rank.get_label_quality_scores(labels, P, method=ranked_by)
    assert np.all(np.diff(quality[ours]) >= 0)  # worst label quality first
    return ours


def grid_probabilities(labels, n_classes, grid, rng):
    """Rows of multiples of 1/total (coarse grids tie often), leaning toward the label."""
    weights = rng.integers(0, grid + 1, (len(labels), n_classes))
    weights[np.arange(len(labels)), labels] += rng.integers(0, grid + 1, len(labels))
    weights[weights.sum(axis=1) == 0, 0] = 1
    return weights / weights.sum(axis=1, keepdims=True)


def imbalanced(shares, n=200, seed=0, grid=None):
    """Labels in the given class shares; softmax probabilities, or grid ones (ties)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(shares)), np.round(np.multiply(shares, n)).astype(int))
    if grid is not None:
        return labels, grid_probabilities(labels, len(shares), grid, rng)
    logits = rng.normal(size=(len(labels), len(shares)))
    logits[np.arange(len(labels)), labels] += rng.uniform(0, 3, len(labels))
    P = np.exp(logits)
    return labels, P / P.sum(axis=1, keepdims=True)


def tied_block():
    """Quarter probabilities: each class's threshold is exactly 0.5, reached by many rows.

    Rows tie on the argmax with the label (0 and 5, 11), sit at another class's
    threshold (7, 13), and repeat (1 and 2, 6 and 9); the block is stacked
    three times so every row has duplicates.
    """
    P = np.array([[2, 2, 0], [2, 1, 1], [2, 1, 1], [3, 1, 0], [1, 3, 0],
                  [2, 2, 0], [1, 2, 1], [2, 1, 1], [0, 3, 1], [1, 2, 1],
                  [1, 1, 2], [2, 0, 2], [0, 2, 2], [2, 1, 1], [0, 1, 3]]) / 4
    labels = np.repeat([0, 1, 2], 5)
    return np.tile(labels, 3), np.tile(P, (3, 1))


@pytest.fixture(scope="module")
def out_of_fold():
    X, y = load_digits(return_X_y=True)
    X, y = scale(X[:600]), y[:600]
    y_noisy, flipped = flip_labels(y, 0.15, random_state=0)
    P = cross_val_predict(LogisticRegression(max_iter=300), X, y_noisy, cv=5,
                          method="predict_proba")
    return y_noisy, P, flipped


@pytest.mark.parametrize("ranked_by", RANKINGS)
@pytest.mark.parametrize("filter_by", FILTERS)
def test_flags_equal_cleanlabs_on_the_same_probabilities(out_of_fold, filter_by, ranked_by):
    labels, P, _ = out_of_fold
    ours = assert_same_as_cleanlab(labels, P, filter_by, ranked_by)
    assert 0 < len(np.flatnonzero(ours)) < len(labels)  # a case with something to agree on


@pytest.mark.parametrize("ranked_by", RANKINGS)
@pytest.mark.parametrize("filter_by", FILTERS)
@pytest.mark.parametrize("case", ["90/8/2", "90/8/2 ties", "90/8/2 halves", "60/25/10/5 ties",
                                  "5 classes", "tied block"])
def test_equal_to_cleanlab_on_imbalanced_and_tied_inputs(case, filter_by, ranked_by):
    labels, P = {"90/8/2": lambda: imbalanced([0.9, 0.08, 0.02]),
                 "90/8/2 ties": lambda: imbalanced([0.9, 0.08, 0.02], grid=4),
                 # calibrated counts ending in .5: their rounding needs cleanlab's exact sums
                 "90/8/2 halves": lambda: imbalanced([0.9, 0.08, 0.02], n=60, seed=10, grid=4),
                 "60/25/10/5 ties": lambda: imbalanced([0.6, 0.25, 0.1, 0.05], seed=1, grid=2),
                 "5 classes": lambda: imbalanced([0.3, 0.3, 0.2, 0.15, 0.05], n=300, seed=2),
                 "tied block": tied_block}[case]()
    assert_same_as_cleanlab(labels, P, filter_by, ranked_by)


def test_tied_inputs_really_tie():
    """The tied cases hit what they are for: exact thresholds, argmax ties, ties at cuts."""
    labels, P = tied_block()
    for k in range(3):
        assert P[labels == k, k].mean() == 0.5  # the threshold, reached exactly
    assert P[5, 0] == P[5, 1] and P[5].argmax() == 0 != labels[5]  # argmax 0 by index...
    assert not find_label_issues(labels=labels, pred_probs=P,  # ...but the label wins the tie
                                 filter_by="predicted_neq_given")[5]
    # 90/8/2 on a coarse grid: equal values straddle some class's cut
    labels, P = imbalanced([0.9, 0.08, 0.02], grid=4)
    joint, _ = confident_joint(P, labels)
    counts = prune_counts(joint)
    straddled = 0
    for k in range(3):
        lowest = np.sort(P[labels == k, k])
        cut = len(lowest) - counts[k, k]
        straddled += 1 <= cut < len(lowest) and lowest[cut - 1] == lowest[cut]
    assert straddled


@st.composite
def labelled_probabilities(draw):
    """2-5 classes, 5-60 rows, at least 2 labels used (cleanlab's requirement; it
    allows unused classes, so some are), often one rare class, probabilities on
    grids from coarse (many ties) to fine."""
    n_classes = draw(st.integers(2, 5))
    n = draw(st.integers(5, 60))
    labels = draw(arrays(np.intp, n, elements=st.integers(0, n_classes - 1)))
    if draw(st.booleans()):  # imbalanced: most rows in class 0
        labels[draw(arrays(np.bool_, n))] = 0
    assume(len(np.unique(labels)) >= 2)
    grid = draw(st.sampled_from([1, 2, 4, 10, 1000]))
    seed = draw(st.integers(0, 2**32 - 1))
    return labels, grid_probabilities(labels, n_classes, grid, np.random.default_rng(seed))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(data=labelled_probabilities(), ranked_by=st.sampled_from(RANKINGS))
def test_equal_to_cleanlab_property(data, ranked_by):
    labels, P = data
    for filter_by in FILTERS:
        assert_same_as_cleanlab(labels, P, filter_by, ranked_by)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(2, 5).flatmap(lambda k: arrays(np.int64, (k, k), elements=st.integers(0, 4))))
def test_prune_counts_lift_empty_diagonals_like_cleanlab(joint):
    np.testing.assert_array_equal(prune_counts(joint),
                                  cleanlab_filter._keep_at_least_n_per_class(joint.T, n=1))


HALVES_AND_THIRDS = st.sampled_from([0, 0.25, 0.5, 1.5, 2.5, 1 / 3, 2 / 3, 7.75])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(arrays(np.float64, st.integers(1, 6), elements=HALVES_AND_THIRDS))
def test_round_preserving_sum_is_cleanlabs(values):
    from cleanlab.internal.util import round_preserving_sum as theirs

    np.testing.assert_array_equal(round_preserving_sum(values), theirs(values))


def test_default_filter_is_cleanlabs(out_of_fold):
    labels, P, _ = out_of_fold
    np.testing.assert_array_equal(find_label_issues(labels=labels, pred_probs=P),
                                  cleanlab_filter.find_label_issues(labels, P, n_jobs=1))
    assert not np.array_equal(  # a real change from the old default here
        find_label_issues(labels=labels, pred_probs=P),
        find_label_issues(labels=labels, pred_probs=P, filter_by="confident_learning"))


def test_a_single_row_class_warns_like_cleanlab():
    labels, P = imbalanced([0.5, 0.45, 0.05], n=20)  # class 2 has one row
    with pytest.warns(UserWarning, match="too few examples"):
        cleanlab_filter.find_label_issues(labels, P, n_jobs=1)
    with pytest.warns(UserWarning, match=r"classes \[2\] have a single row"):
        find_label_issues(labels=labels, pred_probs=P)


def test_unused_classes_are_allowed_as_by_cleanlab():
    labels, P = imbalanced([0.6, 0.0, 0.4], n=50)  # no row labelled 1
    for filter_by in FILTERS:
        assert_same_as_cleanlab(labels, P, filter_by)


@pytest.mark.parametrize("excess, accepted", [(0.9, True), (-0.9, True), (2, False),
                                              (-2, False)])
def test_row_sum_tolerance_boundary(excess, accepted):
    labels = [0, 0, 1, 1]
    P = [[0.9, 0.1], [0.5, 0.5 + excess * ROW_SUM_TOL], [0.2, 0.8], [0.3, 0.7]]
    if accepted:
        assert find_label_issues(labels=labels, pred_probs=P).shape == (4,)
    else:
        with pytest.raises(ValueError, match=rf"pred_probs rows .*\(within {ROW_SUM_TOL:g}\); "
                                             r"row 1 sums to"):
            find_label_issues(labels=labels, pred_probs=P)


def test_one_class_is_refused_as_by_cleanlab():
    P = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    with pytest.raises(ValueError, match="at least 2 classes"):
        cleanlab_filter.find_label_issues(np.ones(3, dtype=int), P, n_jobs=1)
    with pytest.raises(ValueError, match="at least 2 classes"):
        find_label_issues(labels=[1, 1, 1], pred_probs=P)


def test_labels_is_y_with_an_estimator(out_of_fold):
    labels, _, _ = out_of_fold
    X = scale(load_digits(return_X_y=True)[0][:600])
    a = find_label_issues(LogisticRegression(max_iter=300), X, labels=labels, n_issues=20,
                          random_state=0)
    b = find_label_issues(LogisticRegression(max_iter=300), X, labels, n_issues=20,
                          random_state=0)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"labels": [0, 1, 1], "pred_probs": [[0.5, 0.5], [0.2, 0.8]]}, ValueError, "3 values"),
    ({"labels": [0, 2], "pred_probs": [[0.5, 0.5], [0.2, 0.8]]}, ValueError, "class indices"),
    ({"labels": [0, 1], "pred_probs": [[0.5, 0.6], [0.2, 0.8]]}, ValueError, "summing to 1"),
    ({"labels": [0, 1], "pred_probs": [[1.5, -0.5], [0.2, 0.8]]}, ValueError,
     "pred_probs must hold probabilities; got a negative"),
    ({"labels": [0, 1], "pred_probs": [[0.5, 0.5], [0.2, 0.8]],
      "filter_by": "low_self_confidence"}, ValueError, "filter_by must be"),
    ({"labels": [0, 1], "pred_probs": [[0.5, 0.5], [0.2, 0.8]],
      "return_indices_ranked_by": "margin"}, ValueError, "return_indices_ranked_by must"),
    ({"labels": [0, 1], "y": [0, 1], "pred_probs": [[0.5, 0.5], [0.2, 0.8]]}, ValueError,
     "labels once"),
    ({"estimator": LogisticRegression(), "labels": [0, 1], "pred_probs": [[1, 0], [0, 1]]},
     ValueError, "without an estimator"),
    ({"labels": [0, 1]}, TypeError, "needs an estimator"),
])
def test_mixed_conventions_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        find_label_issues(**kwargs)


def test_return_indices_with_pred_probs_ranks_by_self_confidence(out_of_fold):
    labels, P, _ = out_of_fold
    idx = find_label_issues(labels=labels, pred_probs=P, return_indices=True)
    ref = find_label_issues(labels=labels, pred_probs=P,
                            return_indices_ranked_by="self_confidence")
    np.testing.assert_array_equal(idx, ref)
    assert set(idx) == set(np.flatnonzero(find_label_issues(labels=labels, pred_probs=P)))


def test_filter_by_is_refused_with_an_estimator():
    X = np.random.RandomState(0).normal(size=(20, 2))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match="filter_by='both' applies to pred_probs="):
        find_label_issues(LogisticRegression(), X, y, filter_by="both")
