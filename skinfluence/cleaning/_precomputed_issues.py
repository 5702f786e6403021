"""Label issues from precomputed out-of-fold probabilities (cleanlab's calling convention).

``find_label_issues(labels=..., pred_probs=...)`` fits nothing: it reads the
held-out probabilities a user already has and flags the rows that
``cleanlab.filter.find_label_issues`` (cleanlab 2.x) flags for the same
``filter_by``:

- ``"prune_by_noise_rate"`` (cleanlab's default and ours on this route),
  ``"prune_by_class"``, ``"both"``: per given class, as many rows as the
  calibrated confident joint estimates to be mislabelled, chosen by margin,
  by low self-confidence, or by both (``_cleanlab_filters``);
- ``"confident_learning"``: the rows the confident joint counts off its
  diagonal;
- ``"predicted_neq_given"``: rows whose most probable class is not the label.

Each filter then un-flags the rows the model predicts as labelled, the given
label winning ties (cleanlab adds 1e-6 to its probability before the argmax).

Where this differs from cleanlab, on purpose: probabilities are read as
float64; negative values, rows not summing to 1 within ``ROW_SUM_TOL``,
non-integer labels and labels of one class (even all 0) are refused; ranked
indices list equal-quality rows in row order; cleanlab's other options
(``low_*`` filters, ``frac_noise``, ``num_to_remove_per_class``,
``min_examples_per_class``, ``confident_joint``) are not offered.
"""
import warnings

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

from ._cleanlab_filters import SLACK, confident_joint, prune

FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
           "predicted_neq_given")
RANKINGS = ("self_confidence", "normalized_margin")
ROW_SUM_TOL = 1e-5  # |row sum - 1| allowed: float32 softmax outputs pass, raw scores do not


def check_pred_probs(labels, pred_probs):
    """Check cleanlab-style inputs.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Class indices 0..K-1 (integers or booleans), at least two distinct.
    pred_probs : array-like of shape (n_samples, K)
        Probabilities: finite, non-negative, each row summing to 1 within
        ``ROW_SUM_TOL`` (cleanlab checks only that values lie in
        [-1e-6, 1 + 1e-6]; a negative value or a row that is not a
        distribution is refused here, as it is likely not probabilities).

    Returns
    -------
    y : ndarray of shape (n_samples,)
        Labels as ``intp``.
    P : ndarray of shape (n_samples, K)
        Probabilities as float64 (computed in float64 whatever the input dtype).
    """
    labels = column_or_1d(np.asarray(labels), warn=True)
    check_classification_targets(labels)
    P = check_array(pred_probs, dtype=np.float64, input_name="pred_probs")
    if P.shape[0] != len(labels):
        raise ValueError(f"pred_probs has {P.shape[0]} rows, labels has {len(labels)} values.")
    if P.shape[1] < 2:
        raise ValueError(f"pred_probs needs a column per class (at least 2), got {P.shape[1]}.")
    if np.any(P < 0):
        raise ValueError(f"pred_probs must hold probabilities; got a negative value, {P.min()}.")
    off = np.abs(P.sum(axis=1) - 1.0)
    if np.any(off > ROW_SUM_TOL):
        row = int(np.argmax(off))
        raise ValueError(f"pred_probs rows must be probabilities summing to 1 (within "
                         f"{ROW_SUM_TOL:g}); row {row} sums to {float(P[row].sum())!r}.")
    if labels.dtype.kind not in "iub" or labels.min() < 0 or labels.max() >= P.shape[1]:
        raise ValueError(f"labels must be class indices 0..{P.shape[1] - 1}, the columns of "
                         f"pred_probs (cleanlab's convention); got {np.unique(labels)[:10]}.")
    if len(np.unique(labels)) < 2:  # cleanlab refuses this too (bar all-0 labels)
        raise ValueError(f"labels must contain at least 2 classes; got only {labels[0]}.")
    return labels.astype(np.intp), P


def precomputed_issues(labels, pred_probs, *, filter_by="prune_by_noise_rate",
                       return_indices_ranked_by=None):
    """Rows whose label looks wrong, as cleanlab's ``find_label_issues`` finds them.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Given labels, class indices 0..K-1.
    pred_probs : array-like of shape (n_samples, K)
        Out-of-fold probabilities (see :func:`check_pred_probs`).
    filter_by : str, default="prune_by_noise_rate"
        One of ``FILTERS`` (module docstring).
    return_indices_ranked_by : {"self_confidence", "normalized_margin"} or None
        Return the flagged rows' indices, lowest label quality first (ties
        in row order; cleanlab's order among ties is unspecified).

    Returns
    -------
    issues : ndarray
        Boolean mask of shape (n_samples,), or the ranked indices.

    Examples
    --------
    >>> P = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]]
    >>> labels = [0, 0, 0, 1, 1, 1]
    >>> precomputed_issues(labels, P).tolist()  # row 3 is not counted as mislabelled
    [False, False, True, False, False, False]
    >>> precomputed_issues(labels, P, filter_by="predicted_neq_given").tolist()  # 5: a tie
    [False, False, True, True, False, False]
    """
    y, P = check_pred_probs(labels, pred_probs)
    if filter_by not in FILTERS:
        raise ValueError(f"filter_by must be one of {FILTERS}, got {filter_by!r}.")
    if return_indices_ranked_by is not None and return_indices_ranked_by not in RANKINGS:
        raise ValueError(f"return_indices_ranked_by must be None or one of {RANKINGS}, got "
                         f"{return_indices_ranked_by!r}.")
    if filter_by == "predicted_neq_given":
        flagged = np.ones(len(y), dtype=bool)  # the argmax check below is the whole filter
    else:
        joint, off_diagonal = confident_joint(P, y)
        if filter_by == "confident_learning":
            flagged = off_diagonal
        else:
            warn_single_rows(y, P.shape[1])
            flagged = prune(P, y, joint, filter_by)
    flagged &= ~predicted_as_labelled(P, y)
    if return_indices_ranked_by is None:
        return flagged
    quality = label_quality(P, y, return_indices_ranked_by)
    rows = np.flatnonzero(flagged)
    return rows[np.argsort(quality[rows], kind="stable")]


def predicted_as_labelled(P, y):
    """Rows whose argmax is the label once the label gets ``SLACK`` more (wins near-ties)."""
    bumped = P.copy()
    bumped[np.arange(len(y)), y] += SLACK
    return bumped.argmax(axis=1) == y


def warn_single_rows(y, n_classes):
    """Warn, as cleanlab does, that the prune filters never flag a class's only row."""
    single = np.flatnonzero(np.bincount(y, minlength=n_classes) == 1)
    if len(single):
        warnings.warn(f"classes {single.tolist()} have a single row, which the prune_by_* "
                      "filters never flag (cleanlab's min_examples_per_class=1).", UserWarning,
                      stacklevel=4)


def label_quality(P, y, kind):
    """cleanlab's label quality scores: higher = the label looks more right."""
    self_conf = P[np.arange(len(y)), y]
    if kind == "self_confidence":
        return self_conf
    others = P.copy()
    others[np.arange(len(y)), y] = -np.inf
    return (self_conf - others.max(axis=1) + 1.0) / 2.0  # normalized margin in [0, 1]
