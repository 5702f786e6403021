"""How many labels look wrong, and which: the rules behind ``fraction="auto"``.

Two pieces of evidence are available after cross-fitting, and they fail in
different places:

- the influence score of each training row, measured against the trusted part
  of the held-out folds (rows whose given label their fold's model predicts);
- the held-out ("out-of-fold") probability of each row's given label, from
  the one model that did not train on it.

The *number* of label errors is estimated from the held-out probabilities with
the confident joint of Northcutt, Jiang & Chuang, "Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 70 (2021): a row labelled i
counts as really belonging to j when its probability of j reaches class j's
average self-confidence (the largest such j). The off-diagonal share of these
counts is the estimate; on digits, breast cancer, wine and Adult with 10-30%
uniform or class-conditional flips it came within 0.05 of the true rate in
every setting (mean of 3 seeds), where the version calibrated to the class
sizes overshot by up to 0.10. The *ranking* is the mean of the row's rank by
influence score and its rank by held-out self-confidence: measured on the same
data, the combined rank flagged at least as precisely as either alone.

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
    P, y = proba[known], np.asarray(y_idx)[known]
    thresholds = np.array([P[y == j, j].mean() if np.any(y == j) else np.inf
                           for j in range(n_classes)])
    above = P >= thresholds
    has_candidate = above.any(axis=1)
    guess = np.argmax(np.where(above, P, -np.inf), axis=1)
    joint = np.zeros((n_classes, n_classes))
    np.add.at(joint, (y[has_candidate], guess[has_candidate]), 1.0)
    return joint


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


@dataclass
class LabelIssues:
    ranked: np.ndarray  # row indices, most likely mislabelled first (scored, active rows)
    noise_rate: float  # estimated share of wrong labels among the active rows
    memorised_share: float  # or None without held-out probabilities


def find_issues(scores, proba, y_idx, active, fitted):
    """The estimators' and ``find_label_issues``' one rule: noise rate and ranking.

    ``fitted`` is None where the probabilities are not held out (explicit
    validation data, precomputed scores): the memorisation check is skipped.
    """
    noise_rate = estimate_noise_rate(proba[active], y_idx[active])
    memorised = None
    if fitted is not None:
        memorised = memorised_share(proba[active], y_idx[active], fitted[active])
    ranked = rank_label_issues(np.where(active, scores, np.nan), proba, y_idx,
                               use_scores=memorised is None or memorised <= 0.5)
    return LabelIssues(ranked=ranked, noise_rate=noise_rate, memorised_share=memorised)
