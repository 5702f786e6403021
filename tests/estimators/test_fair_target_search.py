"""The target-gap search on scripted gap curves (the refits replaced by a curve over the
number of rows acted on), against the rule its module documents: a gap that rises by
more than the tolerance bounds the search from above; a smaller rise does not."""
from types import SimpleNamespace

import numpy as np
import pytest

from skinfluence.estimators import _fair_target


@pytest.fixture
def scripted(monkeypatch):
    """run(curve) -> TargetPath, with gap = curve(rows acted on) and parity never passed."""
    n = 400

    class Evaluator:
        y_val = s_val = None

        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, acted, weights, need_scores=False):
            return curve_of[0](int(acted.sum())), None, (np.linspace(-1, 1, n), None)

    curve_of = [None]
    monkeypatch.setattr(_fair_target, "_Evaluator", Evaluator)
    monkeypatch.setattr(_fair_target, "_splits", lambda plan, idx, cv, seed: [(idx, idx)])
    monkeypatch.setattr(_fair_target, "_positive_label", lambda objective, classes: 1)
    monkeypatch.setattr(_fair_target, "_largest_pair", lambda *args: (lambda pred: 1.0))

    def run(curve):
        curve_of[0] = curve
        plan = SimpleNamespace(y=np.arange(n) % 2, sample_weight=None)
        return _fair_target.reach_target_gap(
            None, plan, action="trim", objective=SimpleNamespace(gap_kind="demographic_parity"),
            method=None, target=0.10, tolerance=0.02, max_rounds=12, cv=5, seed=0)
    return run


def test_a_rise_within_the_tolerance_does_not_stop_the_search(scripted):
    def curve(m):  # flat, up by 0.005 (< 0.02) from 10 rows, then down to the target
        return 0.300 if m < 10 else 0.305 if m < 30 else max(0.0, 0.305 - (m - 30) * 0.005)

    path = scripted(curve)
    # the target window [0.08, 0.10] is 71-75 rows on this curve
    assert path.reached and 0.08 <= path.gap <= 0.10 and 71 <= path.knob <= 75


def test_a_rise_beyond_the_tolerance_bounds_the_search(scripted):
    def curve(m):  # up by 0.1 (> 0.02) from 10 rows: the minimum lies before
        return 0.300 if m < 10 else 0.400 if m < 30 else max(0.0, 0.400 - (m - 30) * 0.005)

    path = scripted(curve)
    first_rise = min(h["knob"] for h in path.history if h["gap"] > 0.32)
    assert not path.reached and path.gap == pytest.approx(0.300)
    # no knob deeper than the first one that rose is tried after it
    after = [h["knob"] for h in path.history if h["round"] > 0]
    assert max(after[after.index(first_rise):]) == first_rise


def test_the_reweighting_search_clips_each_weight_at_max_weight():
    """Weights exp(lam z) scaled to mean 1, then clipped (worked by hand: z = -1, 0, 1, 3
    and lam = 1 give e^z / mean(e^z) = 0.0609, 0.1655, 0.4498, 3.3238 before the clip)."""
    z = np.array([-1.0, 0.0, 1.0, 3.0])
    raw = np.exp(z) / np.exp(z).mean()
    np.testing.assert_allclose(raw, [0.0609, 0.1655, 0.4498, 3.3238], atol=5e-5)
    got = _fair_target._tilted_weights(z, 1.0, 2.0)
    np.testing.assert_allclose(got, [0.0609, 0.1655, 0.4498, 2.0], atol=5e-5)
    np.testing.assert_allclose(_fair_target._tilted_weights(z, 1.0, None), raw, rtol=1e-12)
    np.testing.assert_allclose(_fair_target._tilted_weights(z, 0.0, 2.0), np.ones(4))
