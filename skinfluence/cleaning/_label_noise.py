"""How many labels look wrong, and which: the rules behind ``fraction="auto"``.

Two pieces of evidence are available after cross-fitting, and they fail in
different places:

- the influence score of each training row, measured against the trusted part
  of the held-out folds (rows whose given label their fold's model predicts);
- the held-out ("out-of-fold") probability of each row's given label, from
  the one model that did not train on it.

Candidates, per given class. The confident joint of Northcutt, Jiang &
Chuang, "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR
70 (2021), counts a row labelled i as really belonging to j when its held-out
probability of j reaches class j's average self-confidence (the largest such
j). Class i's candidates are as many of its rows as its off-diagonal count,
taken among the rows whose held-out most probable class is not i (cleanlab
drops the others too: on a table with a 9% class the minority's low threshold
counts many majority rows the model still predicts right),
ranked within class i by the mean of their rank by influence score and their
rank by held-out probability of i. Counting and ranking within each class
keeps noise that only produces one class from sending flags to the others.

Acting, or not. On clean but hard data the confident joint counts the model's
own errors: a tenth to a fifth of the rows on a survey table or Adult with
logistic regression and no flipped label. Held-out probabilities alone cannot
tell those rows from flips (a model fitted to noisy labels is calibrated to
them too), so :mod:`skinfluence.cleaning._refit_check` asks what acting does,
nested so that it never judges candidates on the rows that chose them: it
picks how many of each class's candidates to act on (none, half, all).
Whatever it picks, no class loses more than ``CLASS_CAP`` of its rows.

Except where the models memorise: influence is measured at models that trained
on the row, and a wrong label the model has fitted has almost no gradient left.
When the models that trained on them still predict the given label of most
rows that the held-out models doubt (``memorised_share`` above one half), the
ranking uses the held-out self-confidence alone. Measured: 64-128-10 MLPs on
digits with 20% flips fitted 64-73% of the doubted rows (influence-and-confidence
precision 0.72-0.77, confidence alone 0.88-0.90), logistic regressions on
digits, breast cancer, wine and Adult 3-46%.
"""
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ._precomputed_issues import predicted_as_labelled


def confident_joint(proba, y_idx):
    """Counts ``C[i, j]`` of rows labelled i whose probability of j reaches j's threshold.

    Class j's threshold is the mean probability of j over the rows labelled
    j; a row above several thresholds counts for the class it finds most
    probable among them, a row above none is not counted.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Held-out probabilities (rows with NaN are ignored).
    y_idx : ndarray of shape (n_samples,)
        Given labels as class indices.

    Returns
    -------
    joint : ndarray of shape (n_classes, n_classes)
    """
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    known = np.all(np.isfinite(proba), axis=1)
    y = np.asarray(y_idx)[known]
    counted, guess = confident_joint_rows(proba[known], y)
    joint = np.zeros((n_classes, n_classes))
    np.add.at(joint, (y[counted], guess[counted]), 1.0)
    return joint


def confident_joint_rows(P, y):
    """(counted, guess): which rows the confident joint counts, and for which class.

    ``P`` has no NaN; class j's threshold is the mean of ``P[:, j]`` over the
    rows labelled j; a row counts when it reaches some threshold, for the most
    probable class among those it reaches.
    """
    thresholds = np.array([P[y == j, j].mean() if np.any(y == j) else np.inf
                           for j in range(P.shape[1])])
    above = P >= thresholds
    return above.any(axis=1), np.argmax(np.where(above, P, -np.inf), axis=1)


def estimate_noise_rate(proba, y_idx):
    """Share of rows whose given label is estimated wrong: off-diagonal counts / rows.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1], [0.7, 0.3], [0.85, 0.15], [0.2, 0.8], [0.1, 0.9]])
    >>> float(estimate_noise_rate(proba, np.array([0, 0, 1, 1, 1])))  # row 2 looks like a 0
    0.2
    """
    joint = confident_joint(proba, y_idx)
    n_known = int(np.all(np.isfinite(proba), axis=1).sum())
    return float((joint.sum() - np.trace(joint)) / n_known) if n_known else 0.0


def memorised_share(proba, y_idx, fitted):
    """Share of the doubted rows (held-out argmax differs from the label) still fitted.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Held-out probabilities.
    y_idx : ndarray of shape (n_samples,)
        Given labels as class indices.
    fitted : ndarray of shape (n_samples,)
        Share of the models trained on each row that predict its given label
        (NaN: the row was in no training part).

    Returns
    -------
    share : float in [0, 1] (0 when no row is doubted)
    """
    known = np.all(np.isfinite(proba), axis=1) & np.isfinite(fitted)
    doubted = known & (np.argmax(np.where(known[:, None], proba, 0), axis=1) != y_idx)
    return float(np.mean(fitted[doubted])) if doubted.any() else 0.0


def rank_label_issues(scores, proba, y_idx, *, use_scores=True):
    """Row indices from most to least likely mislabelled; unscored rows (NaN) left out.

    Ordered by the mean of two ranks: the influence score (low = detrimental)
    and the held-out probability of the given label (low = doubtful). Without
    probabilities, by the score alone; ``use_scores=False``, by the
    probability alone (the scores still decide which rows are ranked).
    """
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    key = np.full(len(scores), np.inf)
    rank = rankdata(scores[finite]) if use_scores else np.zeros(int(finite.sum()))
    if proba is not None:
        self_conf = np.asarray(proba)[np.arange(len(scores)), y_idx][finite]
        rank = rank + rankdata(np.nan_to_num(self_conf, nan=1.0))
    key[finite] = rank
    return np.argsort(key, kind="stable")[:int(finite.sum())]


def rank_by_class(scores, proba, y_idx, n_classes, *, use_scores=True):
    """Per given class, its scored rows from most to least likely mislabelled.

    Within class c the key is the mean of the row's rank by influence score
    and its rank by held-out probability of c, both ranked among the rows
    labelled c only, so that one class's uncertainty never pushes another
    class's rows down the list (``use_scores=False``: the probability alone).

    Returns
    -------
    order : list of ndarray, one per class (row indices, NaN scores left out)
    """
    scores = np.asarray(scores, dtype=np.float64)
    order = []
    for c in range(n_classes):
        rows = np.flatnonzero(np.isfinite(scores) & (y_idx == c))
        key = rankdata(scores[rows]) if use_scores else np.zeros(len(rows))
        key = key + rankdata(np.nan_to_num(np.asarray(proba)[rows, c], nan=1.0))
        order.append(rows[np.argsort(key, kind="stable")])
    return order


#: at most this share of a given class's rows is ever a candidate (never gut a class)
CLASS_CAP = 0.5


def capped_counts(joint, class_sizes):
    """Per given class, its off-diagonal confident-joint count, at most ``CLASS_CAP`` of it.

    On a clean table the confident joint counts a small class's hard rows as
    another class's: without the cap, a class of 20 rows could lose most of
    them on the evidence of a count, not of a check on that class.

    Examples
    --------
    >>> import numpy as np
    >>> capped_counts(np.array([[50, 4], [15, 5]]), np.array([54, 20]))
    array([ 4, 10])
    """
    joint = np.asarray(joint)
    off = joint.sum(axis=1) - np.diag(joint)
    return np.minimum(off, np.floor(CLASS_CAP * np.asarray(class_sizes))).astype(int)


def class_candidates(proba, y_idx, n_classes, amount=1.0):
    """Mask of the candidates of held-out probabilities alone: per given class c, the
    ``round(amount * count_c)`` rows of lowest probability of c (``count_c`` from
    :func:`capped_counts`). The nested check chooses each training part's candidates
    with it; the final candidates follow the same counts (:func:`find_issues`).

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9], [0.2, 0.8], [0.9, 0.1]])
    >>> class_candidates(P, np.array([0, 0, 0, 1, 1, 1]), 2).nonzero()[0]  # 2 looks like a 1
    array([2, 5])
    """
    y_idx = np.asarray(y_idx)
    counts = capped_counts(confident_joint(proba, y_idx),
                           np.bincount(y_idx, minlength=n_classes))
    mask = np.zeros(len(y_idx), dtype=bool)
    for c in range(n_classes):
        rows = np.flatnonzero(y_idx == c)
        order = rows[np.argsort(proba[rows, c], kind="stable")]
        order = order[doubted(proba[order], c)]
        mask[order[:int(round(amount * min(counts[c], len(order))))]] = True
    return mask


def doubted(proba, c):
    """Rows of ``proba`` (given class c) whose most probable class is not c, a near-tie
    going to c: the candidates are only such rows, as cleanlab prunes."""
    P = np.nan_to_num(np.asarray(proba, dtype=np.float64), nan=0.0)
    return ~predicted_as_labelled(P, np.full(len(P), c))


@dataclass
class LabelIssues:
    ranked: np.ndarray  # row indices, most likely mislabelled first (scored, active rows)
    by_class: list  # per given class, its rows most likely mislabelled first
    counts: np.ndarray  # per given class, rows the confident joint counts as another class
    joint: np.ndarray  # (n_classes, n_classes) confident joint over the active rows
    memorised_share: float  # or None without held-out probabilities

    def flags(self, n_rows, amount=1.0):
        """Mask of the first ``round(amount * counts[c])`` rows of every given class c."""
        mask = np.zeros(n_rows, dtype=bool)
        for order, count in zip(self.by_class, self.counts):
            mask[order[:int(round(amount * count))]] = True
        return mask


@dataclass
class Decision:
    mask: np.ndarray  # rows to act on
    acted: bool  # whether the candidates are acted on
    check: object  # the nested refit check's CheckResult, or None


def find_issues(scores, proba, y_idx, active, fitted):
    """Per-class candidates: the confident joint's counts, each class ranked on its own.

    ``fitted`` is None where the probabilities are not held out (explicit
    validation data, precomputed scores): the memorisation check is skipped.
    """
    n_classes = proba.shape[1]
    joint = confident_joint(proba[active], y_idx[active])
    memorised = None
    if fitted is not None:
        memorised = memorised_share(proba[active], y_idx[active], fitted[active])
    use_scores = memorised is None or memorised <= 0.5
    masked = np.where(active, scores, np.nan)
    by_class = rank_by_class(masked, proba, y_idx, n_classes, use_scores=use_scores)
    by_class = [rows[doubted(proba[rows], c)] for c, rows in enumerate(by_class)]
    sizes = np.bincount(y_idx[active], minlength=n_classes)
    counts = np.minimum(capped_counts(joint, sizes), [len(rows) for rows in by_class])
    ranked = rank_label_issues(masked, proba, y_idx, use_scores=use_scores)
    return LabelIssues(ranked=ranked, by_class=by_class, counts=counts, joint=joint,
                       memorised_share=memorised)


def decide(issues, n_rows, check=None):
    """Which rows ``fraction="auto"`` acts on: as many candidates as the refit check chose.

    ``check()`` is the nested refit check
    (:func:`skinfluence.cleaning._refit_check.make_check`): its ``amount`` (0,
    or a share of every class's count) says how many of each class's
    candidates are acted on. None (explicit validation data, precomputed
    scores) acts on every candidate.
    """
    full = issues.flags(n_rows)
    if check is None or not full.any():
        return Decision(mask=full, acted=bool(full.any()), check=None)
    result = check()
    mask = issues.flags(n_rows, result.amount)
    return Decision(mask=mask, acted=bool(mask.any()), check=result)
