"""Networks' own inputs through the estimators and find_label_issues: images, signals, dicts.

Reference: the same network fed flat rows, with the reshape (or the split into
the forward() arguments) done inside its forward. Both train identically from
the same seed (full batch, no shuffling), so every score must agree.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
skorch = pytest.importorskip("skorch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from skorch import NeuralNetClassifier  # noqa: E402

from skinfluence import (InfluenceRelabeler, InfluenceReweighter,  # noqa: E402
                         InfluenceTrimmer, find_label_issues)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(y), 240, replace=False)
    y = y[idx] % 3  # three classes keep the nets small
    flip = rng.random(len(y)) < 0.15
    y[flip] = (y[flip] + 1) % 3
    return (X[idx] / 16).astype(np.float32), y.astype(np.int64)


class Shaped(nn.Module):
    """Conv2d on (n, 1, 8, 8) or Conv1d on (n, 2, 32); flat (n, 64) rows are reshaped first
    (a no-op on rows of the right shape)."""

    def __init__(self, shape=(1, 8, 8)):
        super().__init__()
        self.shape = shape
        conv = nn.Conv2d if len(shape) == 3 else nn.Conv1d
        self.conv = conv(shape[0], 3, 3)
        self.fc = nn.Linear(3 * int(np.prod([d - 2 for d in shape[1:]])), 3)

    def forward(self, X):
        return self.fc(torch.tanh(self.conv(X.reshape((-1,) + self.shape))).flatten(1))


class WeightedNet(NeuralNetClassifier):
    """A skorch classifier whose fit takes sample_weight (full batch: rows stay aligned)."""

    def fit(self, X, y, sample_weight=None):
        self.fit_weight_ = None if sample_weight is None else torch.as_tensor(
            np.asarray(sample_weight), dtype=torch.float32)
        return super().fit(X, y)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if not training or getattr(self, "fit_weight_", None) is None:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        return (F.cross_entropy(y_pred, y_true, reduction="none") * self.fit_weight_).mean()


def _net(module, epochs=4, **params):
    return WeightedNet(module, **params, criterion=nn.CrossEntropyLoss, max_epochs=epochs, lr=0.5,
                       batch_size=-1, train_split=None, iterator_train__shuffle=False,
                       verbose=0)


def _seeded(fn, *args, **kwargs):
    torch.manual_seed(0)  # the clones draw their initial weights from torch's RNG
    return fn(*args, **kwargs)


ESTIMATORS = [
    (InfluenceTrimmer, "support_", {"fraction": 0.1}),
    (InfluenceReweighter, "weights_", {}),
    (InfluenceRelabeler, "y_relabeled_", {"fraction": 0.1}),
]


@pytest.mark.parametrize("shape", [(1, 8, 8), (2, 32)])
@pytest.mark.parametrize("Est, attr, params", ESTIMATORS)
def test_estimators_score_images_and_signals_as_their_flat_rows(digits, shape, Est, attr,
                                                                params):
    X, y = digits
    shaped = X.reshape((-1,) + shape)
    net = _net(Shaped, module__shape=shape)
    flat = _seeded(Est(net, cv=2, random_state=0, **params).fit, X, y)
    nd = _seeded(Est(net, cv=2, random_state=0, **params).fit, shaped, y)
    assert np.isfinite(flat.scores_).all()
    np.testing.assert_allclose(nd.scores_, flat.scores_, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(getattr(nd, attr), getattr(flat, attr))
    np.testing.assert_array_equal(nd.predict(shaped), flat.predict(X))
    assert shaped.shape == (len(y),) + shape  # the caller's array is untouched


@pytest.mark.parametrize("cv", [2, 3])
def test_find_label_issues_on_images_matches_flat_rows(digits, cv):
    X, y = digits
    # a fixed count: "auto" may flag nothing when its refit check declines
    flat = _seeded(find_label_issues, _net(Shaped), X, y, cv=cv, random_state=0,
                   n_issues=20, return_indices=True)
    nd = _seeded(find_label_issues, _net(Shaped), X.reshape(-1, 1, 8, 8), y, cv=cv,
                 random_state=0, n_issues=20, return_indices=True)
    assert len(flat) == 20
    np.testing.assert_array_equal(nd, flat)


def test_trimmer_drops_the_same_image_rows_it_would_drop_flat(digits):
    X, y = digits
    trim = _seeded(InfluenceTrimmer(_net(Shaped), cv=2, fraction=0.1, random_state=0).fit,
                   X.reshape(-1, 1, 8, 8), y)
    Xr, yr = trim.fit_resample(X.reshape(-1, 1, 8, 8), y)
    assert Xr.shape == (trim.support_.sum(), 1, 8, 8)
    np.testing.assert_array_equal(Xr, X.reshape(-1, 1, 8, 8)[trim.support_])
    np.testing.assert_array_equal(yr, y[trim.support_])


@pytest.mark.parametrize("bad, match", [
    (np.zeros((0, 1, 8, 8), np.float32), "n_samples >= 1"),
    (np.full((240, 1, 8, 8), np.nan, np.float32), "NaN or infinity"),
    (np.zeros((240, 1, 8, 8), dtype="<U1"), "numeric"),
])
def test_bad_image_arrays_are_refused_by_name(digits, bad, match):
    _, y = digits
    with pytest.raises((ValueError, TypeError), match=match):
        InfluenceTrimmer(_net(Shaped), cv=2).fit(bad, y[:len(bad)] if len(bad) else y[:0])
    with pytest.raises((ValueError, TypeError), match=match):
        find_label_issues(_net(Shaped), bad, y[:len(bad)] if len(bad) else y[:0], cv=2)


def test_image_arrays_still_refused_for_a_non_network(digits):
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    with pytest.raises(ValueError, match="dim 4"):
        InfluenceTrimmer(LogisticRegression()).fit(X.reshape(-1, 1, 8, 8), y)
    with pytest.raises(ValueError, match="y has 239 labels"):
        InfluenceTrimmer(_net(Shaped)).fit(X.reshape(-1, 1, 8, 8), y[:-1])


class TwoInputs(nn.Module):
    """An image and a few extra features, joined before the output layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 36 + 4, 3)

    def head(self, image, extra):
        z = torch.tanh(self.conv(image.reshape(-1, 1, 8, 8))).flatten(1)
        return self.fc(torch.cat([z, extra], 1))


class DictModule(TwoInputs):
    def forward(self, image, extra):  # skorch calls module(**X)
        return self.head(image, extra)


class FlatModule(TwoInputs):
    def forward(self, X):  # the same network on the 68 columns side by side
        return self.head(X[:, :64], X[:, 64:])


@pytest.fixture(scope="module")
def two_inputs(digits):
    X, y = digits
    extra = np.random.default_rng(1).normal(size=(len(y), 4)).astype(np.float32)
    return {"image": X.reshape(-1, 1, 8, 8), "extra": extra}, np.hstack([X, extra]), y


@pytest.mark.parametrize("Est, attr, params", ESTIMATORS)
def test_estimators_score_skorch_dict_inputs_as_the_flat_network(two_inputs, Est, attr, params):
    Xd, Xf, y = two_inputs
    flat = _seeded(Est(_net(FlatModule), cv=2, random_state=0, **params).fit, Xf, y)
    dct = _seeded(Est(_net(DictModule), cv=2, random_state=0, **params).fit, Xd, y)
    assert np.isfinite(flat.scores_).all()
    np.testing.assert_allclose(dct.scores_, flat.scores_, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(getattr(dct, attr), getattr(flat, attr))
    np.testing.assert_array_equal(dct.predict(Xd), flat.predict(Xf))


@pytest.mark.parametrize("n_issues", ["auto", 12])
def test_find_label_issues_on_dict_inputs_matches_the_flat_network(two_inputs, n_issues):
    Xd, Xf, y = two_inputs
    flat = _seeded(find_label_issues, _net(FlatModule), Xf, y, cv=2, n_issues=n_issues,
                   random_state=0, return_indices=True)
    dct = _seeded(find_label_issues, _net(DictModule), Xd, y, cv=2, n_issues=n_issues,
                  random_state=0, return_indices=True)
    np.testing.assert_array_equal(dct, flat)
    if n_issues == "auto":  # the refit check may decline: it must decide alike on both inputs
        checks = [_seeded(InfluenceTrimmer(_net(module), cv=2, fraction="auto",
                                           random_state=0).fit, X, y).refit_check_
                  for module, X in ((DictModule, Xd), (FlatModule, Xf))]
        assert checks[0] == checks[1] and checks[0]["candidates"] > 0
    else:
        assert len(flat) == n_issues


def test_trimmer_resamples_every_array_of_a_dict(two_inputs):
    Xd, _, y = two_inputs
    trim = InfluenceTrimmer(_net(DictModule), cv=2, fraction=0.1, random_state=0)
    Xr, yr = _seeded(trim.fit_resample, Xd, y)
    assert set(Xr) == {"image", "extra"} and 0 < len(yr) < len(y)
    keep = np.flatnonzero(trim.support_)  # chosen from the scores, indexed by hand here
    for key in Xd:
        np.testing.assert_array_equal(Xr[key], Xd[key][keep])
    np.testing.assert_array_equal(yr, y[keep])


@pytest.mark.parametrize("bad, match", [
    ({}, "empty dict"),
    ({1: np.zeros((240, 4), np.float32)}, "forward"),
    ({"image": np.zeros((240, 64), np.float32), "extra": np.zeros((239, 4), np.float32)},
     "same number of rows"),
    ({"image": np.zeros((240, 64), np.float32), "extra": np.full((240, 4), np.inf, np.float32)},
     r"X\['extra'\] contains NaN"),
    ({"image": np.zeros((240, 64), np.float32)},
     r"DictModule.forward takes \['image', 'extra'\].*missing \['extra'\]"),
    ({"image": np.zeros((240, 64), np.float32), "extra": np.zeros((240, 4), np.float32),
      "mask": np.zeros((240, 1), np.float32)}, r"not taken: \['mask'\]"),
])
def test_bad_dicts_are_refused_by_name(digits, bad, match):
    _, y = digits
    with pytest.raises((ValueError, TypeError), match=match):
        InfluenceTrimmer(_net(DictModule), cv=2).fit(bad, y)
    with pytest.raises((ValueError, TypeError), match=match):
        find_label_issues(_net(DictModule), bad, y, cv=2)


@pytest.mark.parametrize("X_val, match", [
    (lambda Xd: {"image": Xd["image"][:20]}, r"X_val: .*missing \['extra'\]"),
    (lambda Xd: {**{k: v[:20] for k, v in Xd.items()}, "zzz": Xd["extra"][:20]},
     r"X_val: .*not taken: \['zzz'\]"),
    (lambda Xd: Xd["extra"][:20, 0], r"at least 2 dimensions.*fitted on a dict of arrays"),
])
def test_validation_dicts_that_forward_cannot_take_are_refused(two_inputs, X_val, match):
    from skinfluence import influence_scores

    Xd, _, y = two_inputs
    net = _seeded(_net(DictModule, epochs=1).fit, Xd, y)
    with pytest.raises(ValueError, match=match):
        influence_scores(net, Xd, y, X_val(Xd), y[:20])


def test_dict_inputs_refused_where_they_stay_unsupported(two_inputs):
    from skinfluence import influence_scores
    from skinfluence.objectives import AdversarialRobustness

    Xd, _, y = two_inputs
    net = _seeded(_net(DictModule, epochs=1).fit, Xd, y)
    with pytest.raises(TypeError, match="dict input"):
        influence_scores(net, Xd, y, Xd, y, objective=AdversarialRobustness(epsilon=0.1))
