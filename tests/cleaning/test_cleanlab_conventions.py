"""find_label_issues in cleanlab's calling convention, against cleanlab itself."""
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import scale

from skinfluence import find_label_issues
from skinfluence.datasets import flip_labels

cleanlab_filter = pytest.importorskip("cleanlab.filter")


@pytest.fixture(scope="module")
def out_of_fold():
    X, y = load_digits(return_X_y=True)
    X, y = scale(X[:600]), y[:600]
    y_noisy, flipped = flip_labels(y, 0.15, random_state=0)
    P = cross_val_predict(LogisticRegression(max_iter=300), X, y_noisy, cv=5,
                          method="predict_proba")
    return y_noisy, P, flipped


@pytest.mark.parametrize("filter_by", ["confident_learning", "predicted_neq_given"])
def test_flags_equal_cleanlabs_on_the_same_probabilities(out_of_fold, filter_by):
    labels, P, flipped = out_of_fold
    ours = find_label_issues(labels=labels, pred_probs=P, filter_by=filter_by)
    theirs = cleanlab_filter.find_label_issues(labels=labels, pred_probs=P, filter_by=filter_by)
    np.testing.assert_array_equal(ours, theirs)
    assert 0 < ours.sum() < len(labels)  # a case with something to agree on


@pytest.mark.parametrize("ranked_by", ["self_confidence", "normalized_margin"])
def test_ranked_indices_equal_cleanlabs(out_of_fold, ranked_by):
    labels, P, _ = out_of_fold
    ours = find_label_issues(labels=labels, pred_probs=P, filter_by="confident_learning",
                             return_indices_ranked_by=ranked_by)
    theirs = cleanlab_filter.find_label_issues(labels=labels, pred_probs=P,
                                               filter_by="confident_learning",
                                               return_indices_ranked_by=ranked_by)
    assert sorted(ours) == sorted(theirs)
    from cleanlab.rank import get_label_quality_scores

    quality = get_label_quality_scores(labels, P, method=ranked_by)
    assert np.all(np.diff(quality[ours]) >= -1e-12)  # worst label quality first


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
    ({"labels": [0, 1], "pred_probs": [[0.5, 0.5], [0.2, 0.8]], "filter_by": "both"},
     ValueError, "filter_by must be"),
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
