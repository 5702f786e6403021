"""Property-based tests of the public API (hypothesis).

Random small problems, methods, objectives and parameter values, valid and
not. Every call either returns what it promises (finite scores of the right
shape, permuted with the rows, the caller's arrays and model untouched) or
raises a ``ValueError`` / ``TypeError`` whose message names the argument at
fault. Any other exception fails the test.

``SKINFLUENCE_PROPERTY_REPORT=<file>`` writes the distinct error messages seen
(what a user can meet) to that file.
"""
import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from skinfluence import (
    IP,
    AdversarialRobustness,
    DemographicParity,
    EqualizedOdds,
    ExactHessian,
    InfluenceRelabeler,
    InfluenceReweighter,
    InfluenceTrimmer,
    IPEnsemble,
    NewtonLOO,
    SampledHessian,
    Utility,
    influence_scores,
)
from skinfluence.methods.samplers import FeatureSampler, LogitSampler, RandomSampler

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: what an error message must name: an argument or parameter of the public API
ARGUMENT = re.compile(
    r"\b(X|y|X_val|y_val|sample_weight|sensitive_features?(_val)?|sensitive_feature|"
    r"method|objective|sampler|batch_size|device|random_state|fraction|threshold|scores|"
    r"positive_class|estimator|cv|y_val)\b|'(\w+)' parameter of \w+|\bweights\b|\bclass(es)?\b"
)

MESSAGES = {}


def _expected_error(exc):
    """Only ValueError / TypeError naming what is wrong; records the message."""
    assert isinstance(exc, (ValueError, TypeError)), f"unexpected {type(exc).__name__}: {exc}"
    message = str(exc)
    assert ARGUMENT.search(message), f"the message names no argument: {message!r}"
    key = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", message.splitlines()[0])[:160]
    MESSAGES[key] = MESSAGES.get(key, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    path = os.environ.get("SKINFLUENCE_PROPERTY_REPORT")
    if path:
        with open(path, "w") as fh:
            for message, count in sorted(MESSAGES.items()):
                fh.write(f"{count}\t{message}\n")


# ------------------------------------------------------------------ strategies
ODD = st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 0.0, 1e-300, 1e300, "x", None, True])


def _bad_or(good):
    return st.one_of(good, good, good, ODD)


@st.composite
def problems(draw):
    n = draw(st.integers(8, 40))
    d = draw(st.integers(1, 4))
    k = draw(st.sampled_from([2, 2, 3]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) * draw(st.sampled_from([1.0, 1.0, 1e-3, 1e3]))
    y = rng.randint(k, size=n)
    y[:k] = np.arange(k)  # every class present
    labels = draw(st.sampled_from(["int", "str", "offset"]))
    if labels == "str":
        y = np.array(["c%d" % v for v in y])
    elif labels == "offset":
        y = y * 3 + 5
    n_val = draw(st.integers(3, 20))
    X_val = rng.normal(size=(n_val, d))
    y_val = y[rng.randint(n, size=n_val)]
    s_val = rng.randint(2, size=n_val)
    s_val[:2] = [0, 1]
    C = draw(st.sampled_from([0.01, 1.0, 100.0]))
    return X, y, X_val, y_val, s_val, C


def _methods():
    dmp = _bad_or(st.one_of(st.just("auto"), st.floats(0, 10)))
    return st.one_of(
        st.just(IP()),
        st.builds(IPEnsemble, n_members=_bad_or(st.integers(1, 4)),
                  perturbation=st.sampled_from(["dropout", "gaussian", "activation", "y"]),
                  dropout=_bad_or(st.floats(0, 0.9)), sigma=_bad_or(st.floats(0, 1)),
                  include_base=st.booleans()),
        st.builds(ExactHessian, damping=dmp,
                  solver=st.sampled_from(["auto", "cholesky", "cg", "lissa", "qr"]),
                  tol=_bad_or(st.floats(0, 1e-3)), max_iter=st.sampled_from([None, 50, 0]),
                  lissa_scale=st.one_of(st.none(), ODD)),
        st.builds(SampledHessian,
                  sampler=st.sampled_from(["logit", "random", "feature", "other",
                                           RandomSampler(), LogitSampler(),
                                           FeatureSampler(n_clusters=3),
                                           FeatureSampler(n_clusters=0)]),
                  fraction=_bad_or(st.floats(0.05, 1.0)), damping=dmp),
        st.builds(NewtonLOO, damping=_bad_or(st.floats(0, 1)), second_order=st.booleans()),
        st.sampled_from(["ip", "exact_hessian", "newton_loo", "ip_ensemble", "nope"]),
    )


def _objectives():
    return st.one_of(
        st.just(Utility()),
        st.builds(DemographicParity, absolute=st.booleans(),
                  sensitive_feature=st.sampled_from([None, 0, 9, "s"])),
        st.builds(EqualizedOdds, combine=st.sampled_from(["sum", "max", "mean"])),
        st.builds(AdversarialRobustness, gamma=_bad_or(st.floats(0.1, 3)),
                  epsilon=_bad_or(st.floats(0.01, 2)),
                  norm=st.sampled_from([None, "l2", "linf", "l1"])),
        st.sampled_from(["utility", "adversarial_robustness", "demographic_parity"]),
    )


def _positive_class(objective, y):
    """Multiclass fairness objectives need positive_class; give it one of the labels."""
    if isinstance(objective, (DemographicParity, EqualizedOdds)) and len(np.unique(y)) > 2:
        return clone(objective).set_params(positive_class=np.unique(y)[-1])
    return objective


# ------------------------------------------------------------------ properties
@settings(max_examples=600, **SETTINGS)
@given(problem=problems(), method=_methods(), objective=_objectives(),
       batch_size=st.sampled_from([1, 5, "auto", 4096]), weighted=st.booleans(),
       seed=st.integers(0, 100))
def test_influence_scores_returns_scores_or_a_named_error(problem, method, objective,
                                                          batch_size, weighted, seed):
    X, y, X_val, y_val, s_val, C = problem
    model = LogisticRegression(C=C, max_iter=300)
    sw = np.random.RandomState(seed).uniform(0.5, 2.0, size=len(y)) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y, sample_weight=sw)
    if not isinstance(objective, str):
        objective = _positive_class(objective, y)
    copies = [a.copy() for a in (X, y, X_val, y_val, s_val)]
    coef = model.coef_.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = influence_scores(model, X, y, X_val, y_val, method=method,
                                      objective=objective, sample_weight=sw,
                                      sensitive_features_val=s_val, batch_size=batch_size,
                                      random_state=seed)
    except FloatingPointError as exc:  # documented: non-finite scores are refused, by name
        assert "damping" in str(exc)
        MESSAGES[str(exc)] = MESSAGES.get(str(exc), 0) + 1
    except Exception as exc:  # noqa: BLE001 - the property is about which exceptions
        _expected_error(exc)
    else:
        assert scores.shape == (len(y),) and np.all(np.isfinite(scores))
    for before, after in zip(copies, (X, y, X_val, y_val, s_val)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(coef, model.coef_)


@settings(max_examples=300, **SETTINGS)
@given(problem=problems(), method=st.sampled_from(["ip", "exact_hessian", "newton_loo"]),
       perm_seed=st.integers(0, 1000))
def test_scores_follow_a_permutation_of_the_training_rows(problem, method, perm_seed):
    X, y, X_val, y_val, _, C = problem
    model = LogisticRegression(C=C, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
        try:
            base = influence_scores(model, X, y, X_val, y_val, method=method)
        except (ValueError, TypeError) as exc:
            _expected_error(exc)
            return
        perm = np.random.RandomState(perm_seed).permutation(len(y))
        moved = influence_scores(model, X[perm], y[perm], X_val, y_val, method=method)
    scale = np.max(np.abs(base)) + 1e-300
    np.testing.assert_allclose(moved, base[perm], rtol=1e-5, atol=1e-6 * scale)


@settings(max_examples=250, **SETTINGS)
@given(problem=problems(),
       Est=st.sampled_from([InfluenceTrimmer, InfluenceRelabeler, InfluenceReweighter]),
       fraction=_bad_or(st.floats(0, 0.99)),
       threshold=st.one_of(st.none(), st.floats(-2, 2), st.just(np.nan)),
       scores_seed=st.integers(0, 1000), nan_share=st.sampled_from([0.0, 0.0, 0.3, 1.0]))
def test_estimators_on_precomputed_scores(problem, Est, fraction, threshold, scores_seed,
                                          nan_share):
    X, y, _, _, _, _ = problem
    rng = np.random.RandomState(scores_seed)
    scores = rng.normal(size=len(y))
    scores[rng.rand(len(y)) < nan_share] = np.nan
    params = {} if Est is InfluenceReweighter else dict(fraction=fraction, threshold=threshold)
    est = Est(LogisticRegression(max_iter=300), **params)
    X0, y0, s0 = X.copy(), y.copy(), scores.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, scores=scores)
    except Exception as exc:  # noqa: BLE001
        _expected_error(exc)
    else:
        finite = np.isfinite(scores)
        if Est is InfluenceReweighter:
            assert np.all(est.weights_ > 0) and np.all(np.isfinite(est.weights_))
        else:
            acted = ~est.support_ if Est is InfluenceTrimmer else est.relabeled_
            if threshold is not None:
                expected = finite & (scores < threshold)
            elif fraction != "auto":
                k = min(int(np.floor(fraction * len(y) + 1e-9)), finite.sum())
                order = np.argsort(np.where(finite, scores, np.inf), kind="stable")
                expected = np.isin(np.arange(len(y)), order[:k])
            else:
                expected = finite
            assert not (acted & ~expected).any()  # unscored / higher rows never acted on
            spared = expected & ~acted
            if threshold is not None or fraction != "auto":
                # only the trimmer spares rows: the best of a class it would remove entirely
                assert Est is InfluenceTrimmer or not spared.any()
                for c in np.unique(y[spared]):
                    assert expected[y == c].all() and spared[y == c].sum() == 1
        assert est.predict(X).shape == (len(y),)
    np.testing.assert_array_equal(X0, X)
    np.testing.assert_array_equal(y0, y)
    np.testing.assert_array_equal(s0, scores)


@settings(max_examples=150, **SETTINGS)
@given(X=st.one_of(st.none(), st.just([[1.0, 2.0]] * 6), st.just(np.ones(6)),
                   st.just(np.full((6, 2), np.nan)), st.just("abc"), st.just(np.ones((6, 3))),
                   st.just(np.ones((0, 2)))),
       y=st.one_of(st.none(), st.just([0, 1] * 3), st.just([0] * 6), st.just([0, 1, 2]),
                   st.just(np.array([None, 1] * 3, dtype=object)),
                   st.just(np.array(["a", 1] * 3, dtype=object)), st.just([0, 1, 7] * 2)),
       which=st.sampled_from(["train", "val"]),
       method=st.sampled_from(["ip", "newton_loo", "exact_hessian"]))
def test_malformed_arrays_get_named_errors(X, y, which, method):
    rng = np.random.RandomState(0)
    Xg, yg = rng.normal(size=(12, 2)), np.array([0, 1] * 6)
    model = LogisticRegression().fit(Xg, yg)
    args = (X, y, Xg, yg) if which == "train" else (Xg, yg, X, y)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = influence_scores(model, *args, method=method)
    except Exception as exc:  # noqa: BLE001
        _expected_error(exc)
    else:
        assert np.all(np.isfinite(scores))
