"""skinfluence.plotting: what each function draws, checked on the Agg backend's artists."""
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from skinfluence import InfluenceRelabeler, InfluenceTrimmer  # noqa: E402
from skinfluence.datasets import make_flipped_blobs  # noqa: E402
from skinfluence.plotting import (plot_accuracy_gap_front, plot_robustness_front,  # noqa: E402
                                  plot_score_distribution)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _bar_counts(ax):
    """Heights of each stacked dataset's bars (the stack's top minus its bottom)."""
    return [np.array([p.get_height() for p in c.patches]) for c in ax.containers]


@pytest.mark.parametrize("bins", [5, 20])
def test_scores_and_mask_are_stacked_as_numpy_counts_them(bins):
    rng = np.random.default_rng(0)
    s = rng.normal(size=200)
    s[:3] = np.nan                      # unscored samples are left out
    mask = np.zeros(200, bool)
    mask[np.argsort(np.nan_to_num(s, nan=np.inf))[:20]] = True
    ax = plot_score_distribution(scores=s, mask=mask, bins=bins)
    kept, acted = _bar_counts(ax)
    edges = np.histogram_bin_edges(s[3:], bins=bins)
    np.testing.assert_array_equal(kept, np.histogram(s[3:][~mask[3:]], edges)[0])
    np.testing.assert_array_equal(acted, np.histogram(s[mask], edges)[0])
    assert kept.sum() + acted.sum() == 197
    cut = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(cut) == 1 and cut[0].get_xdata()[0] == pytest.approx(np.nanmax(s[mask]))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["kept (177)",
                                                                   "acted on (20)"]


@pytest.mark.parametrize("cls, word", [(InfluenceTrimmer, "trimmed"),
                                       (InfluenceRelabeler, "relabeled")])
def test_a_fitted_estimator_marks_what_it_acted_on(cls, word):
    d = make_flipped_blobs(random_state=0)
    est = cls(LogisticRegression(), fraction=0.1, random_state=0).fit(d.X_train, d.y_train)
    acted = ~est.support_ if cls is InfluenceTrimmer else est.relabeled_
    ax = plot_score_distribution(est, truth=d.flipped)
    assert _bar_counts(ax)[1].sum() == acted.sum() == 15
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"{word} (15)" in texts and "known bad (10)" in texts
    rug = [line for line in ax.lines if line.get_marker() == "|"][0]
    np.testing.assert_allclose(np.sort(rug.get_xdata()), np.sort(est.scores_[d.flipped]))


def test_score_distribution_draws_on_the_given_axes():
    fig, (a, b) = plt.subplots(1, 2)
    assert plot_score_distribution(scores=[0.0, 1.0, 2.0], ax=b) is b
    assert not a.patches and b.patches


@pytest.mark.parametrize("kwargs, message", [
    ({}, "Pass a fitted estimator"),
    ({"scores": [1.0, 2.0], "mask": [True]}, "mask has 1 values"),
    ({"scores": [np.nan, np.nan]}, "no finite value"),
    ({"scores": [1.0, 2.0], "truth": [True, False, True]}, "truth has 3 values"),
])
def test_score_distribution_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_score_distribution(**kwargs)


def test_an_unfitted_estimator_is_refused():
    with pytest.raises(TypeError, match="fitted InfluenceTrimmer"):
        plot_score_distribution(LogisticRegression())
    est = InfluenceTrimmer(LogisticRegression())
    with pytest.raises(ValueError, match="either estimator or scores"):
        plot_score_distribution(est, scores=[1.0])


def test_accuracy_gap_front_draws_one_sorted_line_per_method_with_error_bars():
    fronts = {
        "IP": {"gap": [0.10, 0.18, 0.05], "accuracy": [0.84, 0.85, 0.80],
               "gap_std": [0.01, 0.02, 0.01], "accuracy_std": [0.003, 0.002, 0.004],
               "label": ["5%", "0%", "10%"]},
        "random": {"gap": [0.18, 0.17], "accuracy": [0.85, 0.84]},
    }
    ax = plot_accuracy_gap_front(fronts)
    lines = [c.lines[0] for c in ax.containers]
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_xdata(), [0.05, 0.10, 0.18])
    np.testing.assert_allclose(lines[0].get_ydata(), [0.80, 0.84, 0.85])
    assert ax.containers[0].has_xerr and ax.containers[0].has_yerr
    assert not ax.containers[1].has_yerr
    assert sorted(t.get_text() for t in ax.texts) == ["0%", "10%", "5%"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["IP", "random"]
    assert "gap" in ax.get_xlabel() and ax.get_ylabel() == "accuracy"


def test_robustness_front_accepts_a_dataframe():
    pd = pytest.importorskip("pandas")
    front = pd.DataFrame({"clean": [0.85, 0.84, 0.83], "robust": [0.75, 0.80, 0.82]})
    ax = plot_robustness_front({"trim": front, "plain": {"clean": [0.85], "robust": [0.7]}})
    assert [len(c.lines[0].get_xdata()) for c in ax.containers] == [3, 1]
    assert ax.get_xlabel() == "accuracy on clean data"
    assert ax.get_ylabel() == "accuracy under attack"


@pytest.mark.parametrize("fronts, message", [
    ({}, "fronts is empty"),
    ({"a": {"clean": [1.0]}}, "needs 'clean' and 'robust'"),
    ({"a": {"clean": [1.0, 2.0], "robust": [1.0]}}, "differ in length"),
])
def test_front_errors(fronts, message):
    with pytest.raises(ValueError, match=message):
        plot_robustness_front(fronts)


def test_missing_matplotlib_gives_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'skinfluence\[plot\]'"):
        plot_score_distribution(scores=[1.0, 2.0])


@pytest.mark.parametrize("ax", ["axes", 3, "figure"])
def test_a_wrong_ax_and_wrong_length_labels_are_named(ax):
    fig = plt.figure()
    bad_ax = fig if ax == "figure" else ax
    draws = [lambda a: plot_score_distribution(scores=np.arange(5.0), ax=a),
             lambda a: plot_accuracy_gap_front({"m": {"gap": [0.1], "accuracy": [0.8]}}, ax=a),
             lambda a: plot_robustness_front({"m": {"clean": [0.8], "robust": [0.6]}}, ax=a)]
    for draw in draws:
        with pytest.raises(TypeError, match="ax must be a matplotlib Axes or None, got "):
            draw(bad_ax)
        assert not fig.axes  # nothing drawn before the refusal
        good = fig.add_subplot()
        assert draw(good) is good  # a real Axes is drawn on and returned
        fig.clear()
    front = {"gap": [0.1, 0.2, 0.3], "accuracy": [0.9, 0.8, 0.7]}
    for labels in (["0%"], ["0%", "5%", "10%", "20%"]):
        with pytest.raises(ValueError, match=f"'label' has {len(labels)} entries, 'gap' has 3"):
            plot_accuracy_gap_front({"m": {**front, "label": labels}})
    with pytest.raises(ValueError, match="'robust_std' has 2 entries, 'clean' has 3"):
        plot_robustness_front({"m": {"clean": [0.9, 0.8, 0.7], "robust": [0.5, 0.4, 0.3],
                                     "robust_std": [0.01, 0.02]}})


# ---------------------------------------------------------------------- Display objects
def _bars(ax):
    return [(round(p.get_x(), 9), round(p.get_height(), 9)) for p in ax.patches]


def test_score_distribution_display_from_estimator_draws_what_the_function_draws():
    from sklearn.linear_model import LogisticRegression

    from skinfluence import InfluenceTrimmer
    from skinfluence.datasets import make_flipped_blobs
    from skinfluence.plotting import ScoreDistributionDisplay, plot_score_distribution

    d = make_flipped_blobs(random_state=0)
    trimmer = InfluenceTrimmer(LogisticRegression(), fraction=0.1, cv=3,
                               random_state=0).fit(d.X_train, d.y_train)
    truth = np.zeros(len(d.y_train), bool)
    truth[d.flipped] = True
    display = ScoreDistributionDisplay.from_estimator(trimmer, truth=truth, bins=12)
    reference = plot_score_distribution(trimmer, truth=truth, bins=12)
    assert display.figure_ is display.ax_.figure
    assert _bars(display.ax_) == _bars(reference)
    # the trimmed count in the legend is the trimmer's own
    labels = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert f"trimmed ({int((~trimmer.support_).sum())})" in labels
    # plot again on another Axes: the same bars
    _, ax = plt.subplots()
    assert display.plot(bins=12, ax=ax).ax_ is ax and _bars(ax) == _bars(reference)
    plt.close("all")


@pytest.mark.parametrize("bins", [3, 7])
def test_score_distribution_display_from_scores_counts_every_score(bins):
    from skinfluence.plotting import ScoreDistributionDisplay

    s = np.array([-2.0, -1.0, 0.1, 0.5, 1.0, 1.5, np.nan])
    display = ScoreDistributionDisplay.from_scores(s, mask=s < 0, bins=bins)
    heights = np.array([p.get_height() for p in display.ax_.patches])
    # stacked bars, each layer its own counts: kept first, then the acted-on ones
    finite = s[np.isfinite(s)]
    edges = np.histogram_bin_edges(finite, bins=bins)
    kept, _ = np.histogram(finite[finite >= 0], bins=edges)
    acted, _ = np.histogram(finite[finite < 0], bins=edges)
    np.testing.assert_array_equal(heights, np.concatenate([kept, acted]))
    plt.close("all")


@pytest.mark.parametrize("name, keys", [("AccuracyGapFrontDisplay", ("gap", "accuracy")),
                                        ("RobustnessFrontDisplay", ("clean", "robust"))])
def test_front_displays_draw_each_front(name, keys):
    import skinfluence.plotting as plotting

    fronts = {"a": {keys[0]: [0.3, 0.1, 0.2], keys[1]: [0.9, 0.7, 0.8]},
              "b": {keys[0]: [0.5], keys[1]: [0.6]}}
    display = getattr(plotting, name).from_fronts(fronts)
    lines = display.ax_.lines
    assert [list(lines[0].get_xdata()), list(lines[0].get_ydata())] == \
        [[0.1, 0.2, 0.3], [0.7, 0.8, 0.9]]  # sorted by x
    assert display.figure_ is display.ax_.figure
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        display.plot(ax="not axes")
    plt.close("all")


@pytest.mark.parametrize("mask_kind, has_line", [("lowest", True), ("not_lowest", False)])
def test_the_dashed_line_marks_a_threshold_only_when_there_is_one(mask_kind, has_line):
    s = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 1.5])
    mask = s < 0 if mask_kind == "lowest" else np.array([1, 0, 1, 0, 0, 0], bool)
    ax = plot_score_distribution(scores=s, mask=mask, bins=4)
    vertical = [line for line in ax.lines if len(set(line.get_xdata())) == 1]
    assert bool(vertical) == has_line
    if has_line:
        assert vertical[0].get_xdata()[0] == -0.5  # the highest acted-on score
    plt.close("all")


@pytest.mark.parametrize("fronts", [[{"gap": [0.1], "accuracy": [0.9]}], ("a", "b")])
def test_fronts_that_are_not_a_dict_are_refused_by_name(fronts):
    from skinfluence.plotting import plot_accuracy_gap_front

    with pytest.raises(TypeError, match=r"fronts must be a dict \{name: front\}"):
        plot_accuracy_gap_front(fronts)
