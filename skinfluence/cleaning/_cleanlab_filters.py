"""cleanlab's confident-learning filters, re-derived in numpy.

The calibrated confident joint, the prune-count matrix built from it and the
``prune_by_*`` filters of ``cleanlab.filter.find_label_issues`` (cleanlab 2.x,
multi-class labels). Where cleanlab's choices look arbitrary (a 1e-6 slack on
thresholds, counts truncated rather than rounded, numpy's default argsort to
break ties) they are kept on purpose: a user moving from cleanlab should get
the same rows flagged, not rows chosen by a rule that is merely as good.
"""
import numpy as np

SLACK = 1e-6  # cleanlab's FLOATING_POINT_COMPARISON: reaching a threshold, winning an argmax
THRESHOLD_FLOOR = 2 * SLACK  # a threshold never falls below the slack (all-zero columns)
ABSENT_THRESHOLD = 2.0  # a class nobody is labelled with: no probability reaches it
TINY = 1e-100  # guards the divisions of the calibration against empty rows


def confident_joint(P, y):
    """Calibrated confident joint and the rows it counts off the diagonal.

    Class k's threshold is the mean of ``P[:, k]`` over the rows labelled k.
    A row is counted when it reaches (within ``SLACK``) at least one
    threshold: for the class it reaches if only one, else for its argmax
    (cleanlab takes the plain argmax there, even a class below its threshold).

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_classes)
        Out-of-fold probabilities.
    y : ndarray of shape (n_samples,)
        Given labels, class indices.

    Returns
    -------
    joint : ndarray of shape (n_classes, n_classes)
        ``joint[i, j]``: rows labelled i estimated to be j, in integers, each
        row summing to the number of rows labelled i.
    off_diagonal : ndarray of shape (n_samples,)
        Rows counted for a class other than their label (``"confident_learning"``).
    """
    n_classes = P.shape[1]
    counts = np.bincount(y, minlength=n_classes)
    thresholds = np.array([P[y == k, k].mean() if counts[k] else ABSENT_THRESHOLD
                           for k in range(n_classes)])
    reached = P >= np.maximum(thresholds, THRESHOLD_FLOOR) - SLACK
    n_reached = reached.sum(axis=1)
    guess = np.where(n_reached > 1, P.argmax(axis=1), reached.argmax(axis=1))
    counted = n_reached > 0
    joint = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(joint, (y[counted], guess[counted]), 1)
    # every class keeps at least one row estimated correct, so no row of joint is empty
    np.fill_diagonal(joint, np.maximum(joint.diagonal(), 1))
    return calibrate(joint, counts), counted & (guess != y)


def calibrate(joint, counts):
    """Rescale each row of ``joint`` to its class count, then round keeping row totals."""
    scaled = joint / np.maximum(joint.sum(axis=1), TINY)[:, None] * counts[:, None]
    # cleanlab's joint is column-major: adding in its order gives the same last
    # bit, so the halves below round the same way
    scaled = scaled / max(np.sum(scaled.ravel(order="F")), TINY) * counts.sum()
    return np.array([round_preserving_sum(row) for row in scaled])


def round_preserving_sum(values):
    """Round to integers whose sum is the rounded sum of ``values``.

    Rounds each value (half to even), then moves the entries whose rounding
    lost the most (or gained the most) by one until the totals agree.

    Examples
    --------
    >>> round_preserving_sum([1.3, 1.4, 2.3]).tolist()  # 1, 1, 2 sum to 4, not 5
    [1, 2, 2]
    """
    values = np.asarray(values, dtype=float)
    ints = values.round()
    target = values.sum().round()
    while abs(ints.sum().round() - target) > SLACK:
        gap = np.round(target - ints.sum().round())
        step = 1 if gap >= 0 else -1
        order = np.argsort(values - ints)  # default (unstable) kind: cleanlab's tie-break
        ints[(order[::-1] if step > 0 else order)[:min(int(abs(gap)), len(values))]] += step
    return ints.astype(int)


def prune_counts(joint):
    """How many rows to prune per (estimated class, given label): ``joint.T``, adjusted.

    A class with no row estimated correct (a 0 on the diagonal) gets 1, and
    each other nonzero entry of its column loses 1: cleanlab's
    ``_keep_at_least_n_per_class`` with ``n=1``, which spreads the unit over
    the column and truncates, and so takes 1 from each.

    Returns
    -------
    counts : ndarray of shape (n_classes, n_classes)
        ``counts[j, k]``: rows labelled k to flag as looking like class j.
    """
    counts = joint.T.copy()
    lifted = np.flatnonzero(counts.diagonal() == 0)
    counts[:, lifted] = np.maximum(counts[:, lifted] - 1, 0)
    counts[lifted, lifted] = 1
    return counts


def prune(P, y, joint, filter_by):
    """Rows flagged by ``"prune_by_noise_rate"``, ``"prune_by_class"`` or ``"both"``.

    Within each class k (given label), from the prune counts ``C``:

    - by noise rate: for each class j != k, the ``C[j, k]`` rows with the
      largest margin ``P[:, j] - P[:, k]``;
    - by class: the ``n_k - C[k, k]`` rows with the lowest ``P[:, k]``;
    - both: rows flagged by each.

    A class with fewer than 2 rows is never pruned (its only row would go).
    Ties at a cut are broken by numpy's default argsort on the same floats as
    cleanlab's, which picks the same rows.

    Returns
    -------
    flagged : ndarray of shape (n_samples,)
        Boolean mask, before the argmax check every filter gets.
    """
    counts = prune_counts(joint)
    by_rate = np.zeros(len(y), dtype=bool)
    by_class = np.zeros(len(y), dtype=bool)
    for k in range(P.shape[1]):
        rows = np.flatnonzero(y == k)
        if len(rows) < 2:
            continue
        for j in np.flatnonzero(counts[:, k] > 0):
            if j != k:
                margin = P[rows, j] - P[rows, k]
                by_rate[rows[np.argsort(-margin)[:counts[j, k]]]] = True
        n_lowest = len(rows) - counts[k, k]
        if n_lowest >= 1:
            by_class[rows[np.argsort(P[rows, k])[:n_lowest]]] = True
    if filter_by == "prune_by_noise_rate":
        return by_rate
    return by_class if filter_by == "prune_by_class" else by_rate & by_class
