"""scikit-learn-style Display objects for the three plots.

As scikit-learn's ``RocCurveDisplay``: build one from a fitted estimator or
from computed values (``from_estimator`` / ``from_scores`` / ``from_fronts``),
which draws it, or construct it and call ``plot``. After drawing, ``ax_`` and
``figure_`` hold the matplotlib Axes and Figure, and ``plot(ax=...)`` draws
the same data again elsewhere. The drawing itself is the plotting functions'
(:func:`~skinfluence.plotting.plot_score_distribution` and the two fronts).
"""
import numpy as np

from ._plots import (_acted_on, plot_accuracy_gap_front, plot_robustness_front,
                     plot_score_distribution)

__all__ = ["ScoreDistributionDisplay", "AccuracyGapFrontDisplay", "RobustnessFrontDisplay"]


class _Display:
    def _drawn(self, ax):
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


class ScoreDistributionDisplay(_Display):
    """Histogram of influence scores with the acted-on samples marked.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        Influence scores, higher = more beneficial.
    mask : array-like of bool of shape (n_samples,), default=None
        Samples acted on (trimmed, relabeled, down-weighted).
    truth : array-like of bool of shape (n_samples,), default=None
        Samples known to be bad, drawn as a rug.
    label : str, default="acted on"
        Legend entry of the acted-on samples.
    truth_label : str, default="known bad"
        Legend entry of the known-bad samples.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Where it was drawn (after ``plot``).
    figure_ : matplotlib Figure
        The figure of ``ax_``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plotting import ScoreDistributionDisplay
    >>> s = np.array([-2.0, -1.0, 0.5, 1.0, 1.5])
    >>> display = ScoreDistributionDisplay.from_scores(s, mask=s < 0, bins=4)
    >>> display.ax_.get_xlabel()
    'influence score (higher = more beneficial)'
    """

    def __init__(self, scores, *, mask=None, truth=None, label="acted on",
                 truth_label="known bad"):
        self.scores = scores
        self.mask = mask
        self.truth = truth
        self.label = label
        self.truth_label = truth_label

    def plot(self, *, bins=40, ax=None):
        """Draw on ``ax`` (a new figure when None); returns the display."""
        return self._drawn(plot_score_distribution(
            scores=self.scores, mask=self.mask, truth=self.truth, bins=bins, ax=ax,
            label=self.label, truth_label=self.truth_label))

    @classmethod
    def from_estimator(cls, estimator, *, truth=None, bins=40, ax=None, truth_label="known bad"):
        """Scores and the acted-on samples of a fitted influence estimator, drawn."""
        scores, mask, label = _acted_on(estimator)
        return cls(scores, mask=mask, truth=truth, label=label,
                   truth_label=truth_label).plot(bins=bins, ax=ax)

    @classmethod
    def from_scores(cls, scores, *, mask=None, truth=None, bins=40, ax=None, label="acted on",
                    truth_label="known bad"):
        """Scores (and which samples were acted on), drawn."""
        return cls(np.asarray(scores), mask=mask, truth=truth, label=label,
                   truth_label=truth_label).plot(bins=bins, ax=ax)


class _FrontDisplay(_Display):
    _draw = None

    def __init__(self, fronts):
        self.fronts = fronts

    def plot(self, *, ax=None):
        """Draw on ``ax`` (a new figure when None); returns the display."""
        return self._drawn(type(self)._draw(self.fronts, ax=ax))

    @classmethod
    def from_fronts(cls, fronts, *, ax=None):
        """``{name: front}`` (see the plotting function), drawn."""
        return cls(fronts).plot(ax=ax)


class AccuracyGapFrontDisplay(_FrontDisplay):
    """Accuracy against the demographic-parity gap, one line per method.

    Parameters
    ----------
    fronts : dict
        ``{name: front}`` as :func:`~skinfluence.plotting.plot_accuracy_gap_front` takes.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skinfluence.plotting import AccuracyGapFrontDisplay
    >>> display = AccuracyGapFrontDisplay.from_fronts(
    ...     {"trimming": {"gap": [0.18, 0.08], "accuracy": [0.85, 0.82]}})
    >>> display.ax_.get_ylabel()
    'accuracy'
    """

    _draw = staticmethod(plot_accuracy_gap_front)


class RobustnessFrontDisplay(_FrontDisplay):
    """Accuracy on attacked data against accuracy on clean data, one line per method.

    Parameters
    ----------
    fronts : dict
        ``{name: front}`` as :func:`~skinfluence.plotting.plot_robustness_front` takes.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skinfluence.plotting import RobustnessFrontDisplay
    >>> display = RobustnessFrontDisplay.from_fronts(
    ...     {"trimming": {"clean": [0.85, 0.84], "robust": [0.70, 0.75]}})
    >>> len(display.ax_.lines[0].get_xdata())
    2
    """

    _draw = staticmethod(plot_robustness_front)
