import numpy as np
import pytest

from skinfluence.datasets import flip_labels, make_flipped_blobs


def test_flip_labels_flips_exactly_the_reported_fraction():
    y = np.repeat([0, 1, 2], 100)
    y_noisy, flipped = flip_labels(y, 0.1, random_state=0)
    assert flipped.sum() == 30
    assert np.all(y_noisy[flipped] != y[flipped])
    assert np.all(y_noisy[~flipped] == y[~flipped])
    assert np.all(y == np.repeat([0, 1, 2], 100))  # input untouched
    with pytest.raises(ValueError, match="fraction"):
        flip_labels(y, 1.5)


def test_blobs_are_reproducible_and_flipped_mask_is_right():
    a, b = make_flipped_blobs(random_state=3), make_flipped_blobs(random_state=3)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert np.all((a.y_train != a.y_train_clean) == a.flipped)
