"""Label issues from precomputed out-of-fold probabilities (cleanlab's calling convention).

``find_label_issues(labels=..., pred_probs=...)`` fits nothing: it reads the
held-out probabilities a user already has, as cleanlab's
``cleanlab.filter.find_label_issues`` does, and applies one of two of its
filters:

- ``"confident_learning"``: the off-diagonal rows of the confident joint
  (a row labelled i counts for class j != i when its probability of j reaches
  j's mean self-confidence, and j is the most probable of the classes it
  reaches);
- ``"predicted_neq_given"``: rows whose most probable class is not the label.
"""
import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

FILTERS = ("confident_learning", "predicted_neq_given")
RANKINGS = ("self_confidence", "normalized_margin")


def check_pred_probs(labels, pred_probs):
    """(label indices, probabilities): labels 0..K-1 as cleanlab wants, rows summing to 1."""
    labels = column_or_1d(np.asarray(labels), warn=True)
    check_classification_targets(labels)
    P = check_array(pred_probs, dtype=np.float64, input_name="pred_probs")
    if P.shape[0] != len(labels):
        raise ValueError(f"pred_probs has {P.shape[0]} rows, labels has {len(labels)} values.")
    if P.shape[1] < 2:
        raise ValueError(f"pred_probs needs a column per class (at least 2), got {P.shape[1]}.")
    if np.any(P < 0) or not np.allclose(P.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("pred_probs must hold probabilities: non-negative rows summing to 1.")
    if labels.dtype.kind not in "iub" or labels.min() < 0 or labels.max() >= P.shape[1]:
        raise ValueError(f"labels must be class indices 0..{P.shape[1] - 1}, the columns of "
                         f"pred_probs (cleanlab's convention); got {np.unique(labels)[:10]}.")
    return labels.astype(np.intp), P


def precomputed_issues(labels, pred_probs, *, filter_by="confident_learning",
                       return_indices_ranked_by=None):
    """Mask of the flagged rows, or their indices ranked by label quality (worst first)."""
    from ._label_noise import confident_joint_rows

    y, P = check_pred_probs(labels, pred_probs)
    if filter_by not in FILTERS:
        raise ValueError(f"filter_by must be one of {FILTERS}, got {filter_by!r}.")
    if return_indices_ranked_by is not None and return_indices_ranked_by not in RANKINGS:
        raise ValueError(f"return_indices_ranked_by must be None or one of {RANKINGS}, got "
                         f"{return_indices_ranked_by!r}.")
    if filter_by == "predicted_neq_given":
        flagged = P.argmax(axis=1) != y
    else:
        counted, guess = confident_joint_rows(P, y)
        flagged = counted & (guess != y)
    if return_indices_ranked_by is None:
        return flagged
    quality = label_quality(P, y, return_indices_ranked_by)
    rows = np.flatnonzero(flagged)
    return rows[np.argsort(quality[rows], kind="stable")]


def label_quality(P, y, kind):
    """cleanlab's label quality scores: higher = the label looks more right."""
    self_conf = P[np.arange(len(y)), y]
    if kind == "self_confidence":
        return self_conf
    others = P.copy()
    others[np.arange(len(y)), y] = -np.inf
    return (self_conf - others.max(axis=1) + 1.0) / 2.0  # normalized margin in [0, 1]
