import numpy as np
import pytest

from skinfluence.models.linear import LinearModelAdapter
from skinfluence.methods.samplers import FeatureSampler, LogitSampler, RandomSampler
from tests._reference import exact_logistic


@pytest.mark.parametrize("sampler", [RandomSampler(), FeatureSampler(n_clusters=4),
                                     LogitSampler()])
def test_sampled_hessian_is_an_unbiased_estimate_of_the_mean_hessian(binary_data, sampler):
    X, y, _, _ = binary_data
    a = LinearModelAdapter(exact_logistic().fit(X, y))
    train = a.training_data(X, y)
    full = a.data_hessian(train)
    rng = np.random.default_rng(0)
    draws = [a.data_hessian(train, *sampler.sample(a, train, 20, rng)) for _ in range(300)]
    mean = np.mean(draws, axis=0)
    # the average of 300 estimates is within a few standard errors of the truth
    se = np.std(draws, axis=0) / np.sqrt(len(draws))
    assert np.all(np.abs(mean - full) <= 5 * se + 1e-12)
    idx, omega = sampler.sample(a, train, 20, rng)
    assert len(idx) == 20 and np.all(omega > 0)


def test_logit_sampler_prefers_high_curvature_samples(binary_data):
    X, y, _, _ = binary_data
    a = LinearModelAdapter(exact_logistic().fit(X, y))
    train = a.training_data(X, y)
    sizes = a.hessian_norms(train)
    idx, _ = LogitSampler().sample(a, train, 2000, np.random.default_rng(0))
    counts = np.bincount(idx, minlength=train.n)
    assert np.corrcoef(counts, sizes)[0, 1] > 0.9
