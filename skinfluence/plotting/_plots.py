"""Plots of influence scores and of the trade-offs they buy (matplotlib, optional).

Every function draws on ``ax`` (a new figure when None) and returns the Axes;
the Display classes (scikit-learn's convention: ``from_estimator`` /
``from_scores`` / ``from_fronts``, ``plot``, ``ax_``, ``figure_``) wrap them.
matplotlib is imported when a function is called, so ``skinfluence`` itself
does not need it: ``pip install "skinfluence[plot]"``.
"""
import numpy as np

__all__ = ["plot_score_distribution", "plot_accuracy_gap_front", "plot_robustness_front"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skinfluence.plotting needs matplotlib: pip install 'skinfluence[plot]' "
            "(or pip install matplotlib)."
        ) from exc
    return plt


def _axes(ax):
    """``ax``, or a new figure's Axes when None; anything else is refused before drawing."""
    if ax is None:
        _, ax = _pyplot().subplots()
        return ax
    _pyplot()
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}.")
    return ax


def _acted_on(estimator):
    """(scores, mask of acted-on samples, what was done) from a fitted influence estimator."""
    if not hasattr(estimator, "scores_"):
        raise TypeError(
            "estimator must be a fitted InfluenceTrimmer, InfluenceRelabeler or "
            f"InfluenceReweighter (with scores_), got {type(estimator).__name__}."
        )
    if hasattr(estimator, "relabeled_"):
        return estimator.scores_, estimator.relabeled_, "relabeled"
    if hasattr(estimator, "support_"):
        return estimator.scores_, ~estimator.support_, "trimmed"
    if hasattr(estimator, "weights_"):
        return estimator.scores_, estimator.weights_ < 1.0, "down-weighted"
    raise TypeError(f"{type(estimator).__name__} has scores_ but no record of its action.")


def plot_score_distribution(estimator=None, *, scores=None, mask=None, truth=None,
                            bins=40, ax=None, label="acted on", truth_label="known bad"):
    """Histogram of influence scores with the acted-on samples marked.

    Bars are stacked: the acted-on samples in one colour, the others in
    another; when the acted-on samples are exactly those below some score (a
    ``fraction`` or ``threshold``), a dashed line marks that score. With ``truth``
    (e.g. the mask of labels known to be flipped), a rug below the axis shows
    where those samples scored.

    Parameters
    ----------
    estimator : fitted InfluenceTrimmer, InfluenceRelabeler or InfluenceReweighter
        Takes ``scores_`` and the acted-on mask (trimmed, relabeled, or
        weight below 1 for the reweighter) from it. Or pass ``scores``.
    scores : array-like of shape (n_samples,), default=None
        Scores to plot (higher = more beneficial) when no estimator is given.
        NaN scores (unscored samples) are left out.
    mask : array-like of bool of shape (n_samples,), default=None
        Samples to mark as acted on (with ``scores``).
    truth : array-like of bool of shape (n_samples,), default=None
        Samples known to be bad, drawn as a rug.
    bins : int, default=40
        Number of histogram bins.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    label, truth_label : str
        Legend entries for the acted-on and the known-bad samples.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plotting import plot_score_distribution
    >>> s = np.array([-2.0, -1.0, 0.5, 1.0, 1.5])
    >>> ax = plot_score_distribution(scores=s, mask=s < 0, bins=4)
    >>> ax.get_xlabel()
    'influence score (higher = more beneficial)'
    """
    if estimator is not None:
        if scores is not None or mask is not None:
            raise ValueError("Pass either estimator or scores / mask, not both.")
        scores, mask, label = _acted_on(estimator)
    if scores is None:
        raise ValueError("Pass a fitted estimator or scores=.")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    mask = np.zeros(len(scores), dtype=bool) if mask is None else np.asarray(mask, bool).ravel()
    if mask.shape != scores.shape:
        raise ValueError(f"mask has {mask.size} values, scores has {scores.size}.")
    finite = np.isfinite(scores)
    if not finite.any():
        raise ValueError("scores has no finite value to plot.")
    ax = _axes(ax)
    edges = np.histogram_bin_edges(scores[finite], bins=bins)
    ax.hist([scores[finite & ~mask], scores[finite & mask]], bins=edges, stacked=True,
            color=["tab:blue", "tab:red"], label=[f"kept ({int((finite & ~mask).sum())})",
                                                  f"{label} ({int((finite & mask).sum())})"])
    if (finite & mask).any():
        top = scores[finite & mask].max()
        # a threshold only when every lower score was acted on (a fraction, a threshold);
        # fraction="auto" picks rows per class, so kept rows can score below acted-on ones
        if not np.any(finite & ~mask & (scores < top)):
            ax.axvline(top, color="tab:red", linestyle="--", linewidth=1)
    if truth is not None:
        truth = np.asarray(truth, bool).ravel()
        if truth.shape != scores.shape:
            raise ValueError(f"truth has {truth.size} values, scores has {scores.size}.")
        # x in data units, y in axes units: the rug stays visible on a log scale
        ax.plot(scores[finite & truth], np.full((finite & truth).sum(), 0.03), "|",
                color="black", markersize=12, transform=ax.get_xaxis_transform(),
                label=f"{truth_label} ({int((finite & truth).sum())})")
    ax.set_xlabel("influence score (higher = more beneficial)")
    ax.set_ylabel("samples")
    ax.legend()
    return ax


def _front_points(name, front, x_key, y_key):
    """(x, y, x_err, y_err, point labels) of one front given as a mapping or DataFrame."""
    try:
        x = np.asarray(front[x_key], dtype=np.float64).ravel()
        y = np.asarray(front[y_key], dtype=np.float64).ravel()
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"front {name!r} needs {x_key!r} and {y_key!r} entries.") from None
    if x.shape != y.shape:
        raise ValueError(f"front {name!r}: {x_key!r} and {y_key!r} differ in length.")

    def optional(key):
        try:
            return np.asarray(front[key], dtype=np.float64).ravel()
        except (KeyError, IndexError, TypeError):
            return None

    labels = None
    try:
        labels = list(front["label"])
    except (KeyError, IndexError, TypeError):
        pass
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"front {name!r}: 'label' has {len(labels)} entries, {x_key!r} has "
                         f"{len(x)}; give one label per point.")
    errors = [optional(f"{key}_std") for key in (x_key, y_key)]
    for key, err in zip((x_key, y_key), errors):
        if err is not None and err.shape != x.shape:
            raise ValueError(f"front {name!r}: '{key}_std' has {err.size} entries, {x_key!r} "
                             f"has {x.size}.")
    return (x, y, *errors, labels)


def _plot_fronts(fronts, x_key, y_key, xlabel, ylabel, ax, title):
    if not hasattr(fronts, "items"):
        raise TypeError(
            f"fronts must be a dict {{name: front}} (each front a dict or DataFrame with "
            f"{x_key!r} and {y_key!r}), got a {type(fronts).__name__}; e.g. "
            f"{{'mine': {{{x_key!r}: [...], {y_key!r}: [...]}}}}.")
    if not fronts:
        raise ValueError("fronts is empty; give {name: {...}} with at least one front.")
    ax = _axes(ax)
    for name, front in fronts.items():
        x, y, x_err, y_err, labels = _front_points(name, front, x_key, y_key)
        order = np.argsort(x)
        ax.errorbar(x[order], y[order],
                    xerr=None if x_err is None else x_err[order],
                    yerr=None if y_err is None else y_err[order],
                    marker="o", capsize=3, label=name)
        for i in range(len(x) if labels else 0):
            ax.annotate(str(labels[i]), (x[i], y[i]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return ax


def plot_accuracy_gap_front(fronts, *, ax=None):
    """Accuracy against the demographic-parity gap, one line per method.

    Parameters
    ----------
    fronts : dict
        ``{name: front}``; a front is a mapping or DataFrame with ``"gap"`` and
        ``"accuracy"`` (one value per point, e.g. per trimmed fraction), and
        optionally ``"gap_std"``, ``"accuracy_std"`` (error bars) and
        ``"label"`` (text next to each point, e.g. the fraction).
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
        Up and to the left is better: more accurate, smaller gap.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skinfluence.plotting import plot_accuracy_gap_front
    >>> ax = plot_accuracy_gap_front({
    ...     "IP trimming": {"gap": [0.18, 0.12, 0.08], "accuracy": [0.85, 0.84, 0.82],
    ...                     "label": ["0%", "5%", "10%"]}})
    >>> len(ax.lines[0].get_xdata())
    3
    """
    return _plot_fronts(fronts, "gap", "accuracy", "demographic-parity gap (lower is fairer)",
                        "accuracy", ax, "Accuracy against fairness")


def plot_robustness_front(fronts, *, ax=None):
    """Accuracy on attacked data against accuracy on clean data, one line per method.

    Parameters
    ----------
    fronts : dict
        ``{name: front}``; a front is a mapping or DataFrame with ``"clean"``
        and ``"robust"`` accuracies (one value per point), and optionally
        ``"clean_std"``, ``"robust_std"`` and ``"label"``.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
        Up and to the right is better.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skinfluence.plotting import plot_robustness_front
    >>> ax = plot_robustness_front({"plain": {"clean": [0.85], "robust": [0.75]},
    ...                             "trim 5%": {"clean": [0.84], "robust": [0.80]}})
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['plain', 'trim 5%']
    """
    return _plot_fronts(fronts, "clean", "robust", "accuracy on clean data",
                        "accuracy under attack", ax, "Clean against robust accuracy")
