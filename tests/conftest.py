import pytest
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler


def _data(n_classes, n=200, d=5, seed=0):
    X, y = make_classification(n + 100, d, n_informative=3, n_redundant=1,
                               n_classes=n_classes, n_clusters_per_class=1,
                               flip_y=0.05, random_state=seed)
    X = StandardScaler().fit_transform(X)
    return X[:n], y[:n], X[n:], y[n:]


@pytest.fixture
def binary_data():
    return _data(2)


@pytest.fixture
def multiclass_data():
    return _data(3)


@pytest.fixture(params=[2, 3], ids=["binary", "multinomial"])
def any_data(request):
    return _data(request.param)


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """One BLAS thread per test process: CI machines have 2 cores, and two BLAS
    threads only oversubscribe them (test_common.py: 61 s with, 7 s without)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield
