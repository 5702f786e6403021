"""Dask training sets: the same scores as in memory, on a 2-worker cluster."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import (AdversarialRobustness, DemographicParity, ExactHessian,
                         InfluenceRelabeler, InfluenceReweighter, InfluenceTrimmer, IPEnsemble,
                         NewtonLOO, SampledHessian, Utility, influence_scores)

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    """Two single-threaded workers on loopback, shut down after the module."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def _problem(n_classes, n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + 80, 4))
    y = (X @ rng.standard_normal((4, n_classes)) + rng.gumbel(size=(n + 80, n_classes))
         ).argmax(axis=1)
    return X[:n], y[:n], X[n:], y[n:]


def _objectives(n_classes, X_val):
    s = (X_val[:, 0] > 0).astype(int)
    return [(Utility(), None),
            (DemographicParity(positive_class=None if n_classes == 2 else 1), s),
            (AdversarialRobustness(gamma=1.2), None)]


METHODS = [
    "ip", IPEnsemble(n_members=3, perturbation="gaussian"), "exact_hessian",
    ExactHessian(solver="cg"), SampledHessian(sampler="logit", fraction=0.3),
    SampledHessian(sampler="random", fraction=0.3, solver="cg"), NewtonLOO(),
]


def _check_methods(n_classes, methods, objectives):
    X, y, X_val, y_val = _problem(n_classes)
    model = LogisticRegression(C=0.5).fit(X, y)
    Xd = da.from_array(X, chunks=(70, 2))  # column blocks are joined
    for objective, s in objectives(n_classes, X_val):
        for method in methods:
            kw = dict(method=method, objective=objective, sensitive_features_val=s,
                      random_state=0, return_result=True)
            want = influence_scores(model, X, y, X_val, y_val, **kw)
            got = influence_scores(model, Xd, y, X_val, y_val, **kw)
            assert isinstance(got.scores, da.Array)
            assert got.scores.chunks == (Xd.chunks[0],)  # one block of scores per block of X
            np.testing.assert_allclose(got.scores.compute(), want.scores, rtol=1e-8,
                                       atol=1e-12 * np.abs(want.scores).max())
            if want.leverage is not None:
                np.testing.assert_allclose(got.leverage.compute(), want.leverage, rtol=1e-8)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_direct_methods_give_the_in_memory_scores(client, n_classes):
    _check_methods(n_classes, ["ip", "exact_hessian", "newton_loo"],
                   lambda k, X_val: _objectives(k, X_val)[:1])


@pytest.mark.slow
@pytest.mark.parametrize("n_classes", [2, 3])
def test_every_method_and_objective_gives_the_in_memory_scores(client, n_classes):
    direct = [m for m in METHODS if getattr(m, "solver", "auto") != "cg"]
    _check_methods(n_classes, direct, lambda k, X_val: _objectives(k, X_val)[1:])
    # the CG solves: one round of blocks per iteration; the utility objective only
    _check_methods(n_classes, METHODS, lambda k, X_val: _objectives(k, X_val)[:1])


def test_dataframes_weights_and_the_sgd_mean_form(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y, X_val, y_val = _problem(2, n=400)
    sw = np.random.default_rng(1).uniform(0.0, 2.0, len(y))
    sw[:70] = 0.0  # a whole block without weight
    frame = pd.DataFrame(X, columns=list("abcd"))
    for model in (LogisticRegression(class_weight="balanced").fit(X, y, sample_weight=sw),
                  SGDClassifier(loss="log_loss", alpha=0.01, random_state=0).fit(X, y)):
        weights = sw if isinstance(model, LogisticRegression) else None
        for method in ("exact_hessian", "newton_loo"):
            want = influence_scores(model, X, y, X_val, y_val, method=method,
                                    sample_weight=weights)
            Xd = dd.from_pandas(frame, npartitions=4)
            yd = dd.from_pandas(pd.Series(y), npartitions=4)
            wd = None if weights is None else da.from_array(weights, chunks=100)
            got = influence_scores(model, Xd, yd, X_val, y_val, method=method,
                                   sample_weight=wd).compute()
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12 * np.abs(want).max())


def test_unsupported_dask_input_is_refused_with_a_reason(client):
    X, y, X_val, y_val = _problem(2)
    Xd = da.from_array(X, chunks=100)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match="pipeline"):
        influence_scores(pipe, Xd, y, X_val, y_val)
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="single class"):
        influence_scores(model, Xd, np.zeros_like(y), X_val, y_val)
    with pytest.raises(ValueError, match="4 features"):
        influence_scores(model, Xd[:, :3], y, X_val, y_val)
    with pytest.raises(ValueError, match="300 rows"):
        influence_scores(model, Xd, y[:-1], X_val, y_val)


@pytest.mark.parametrize("cls", [InfluenceTrimmer, InfluenceReweighter, InfluenceRelabeler])
def test_estimators_refuse_dask_input_and_say_what_to_do(cls):
    X, y, _, _ = _problem(2)
    estimator = cls(LogisticRegression())
    with pytest.raises(TypeError, match="needs X and y in memory.*influence_scores"):
        estimator.fit(da.from_array(X, chunks=100), y)
    with pytest.raises(TypeError, match="needs X and y in memory"):
        estimator.fit(X, da.from_array(y, chunks=100))
    assert not hasattr(estimator, "scores_")  # nothing computed
