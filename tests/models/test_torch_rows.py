"""A torch DataLoader / Dataset as the training set: rows read from it chunk by chunk."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.func import functional_call, grad, vmap  # noqa: E402
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset  # noqa: E402

from skinfluence import (ExactHessian, IPEnsemble, SampledHessian,  # noqa: E402
                         influence_scores)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 4)).astype("float32")
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype("int64")
    Xv = rng.normal(size=(50, 4)).astype("float32")
    yv = (Xv[:, 0] + Xv[:, 1] ** 2 > 1).astype("int64")
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).eval()
    return (module, nn.CrossEntropyLoss()), X, y, Xv, yv


class MemmapRows(Dataset):
    """(x, y) items read from .npy files on disk, one row at a time."""

    def __init__(self, x_path, y_path):
        self.X = np.load(x_path, mmap_mode="r")
        self.y = np.load(y_path, mmap_mode="r")

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.from_numpy(np.array(self.X[i])), int(self.y[i])


@pytest.mark.parametrize("method", [
    "ip", "exact_hessian", ExactHessian(solver="cg"),
    SampledHessian(sampler="logit", fraction=0.3), IPEnsemble(n_members=3),
])
def test_dataloader_and_dataset_on_disk_give_the_in_memory_scores(problem, method, tmp_path):
    pair, X, y, Xv, yv = problem
    want = influence_scores(pair, X, y, Xv, yv, method=method, random_state=0, batch_size=50)
    shuffled = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=64,
                          shuffle=True)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    on_disk = MemmapRows(tmp_path / "X.npy", tmp_path / "y.npy")
    for source, labels in ((shuffled, None), (on_disk, None), (on_disk, y)):
        got = influence_scores(pair, source, labels, Xv, yv, method=method, random_state=0,
                               batch_size=50)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7 * np.abs(want).max())


def test_ip_from_a_dataloader_is_the_per_sample_gradient_product(problem):
    pair, X, y, Xv, yv = problem
    module, _ = pair
    params = {k: v.detach() for k, v in module.named_parameters()}

    def loss(p, x, t):
        out = functional_call(module, p, (x,))
        return nn.functional.cross_entropy(out, t)
    g_val = grad(loss)(params, torch.tensor(Xv), torch.tensor(yv))
    per_sample = vmap(grad(lambda p, x, t: loss(p, x[None], t[None])), in_dims=(None, 0, 0))(
        params, torch.tensor(X), torch.tensor(y))
    want = sum((per_sample[k] * g_val[k]).flatten(1).sum(1) for k in params).numpy()
    loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=32)
    got = influence_scores(pair, loader, None, Xv, yv, method="ip", batch_size=17)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def test_datasets_without_random_access_or_pairs_are_refused(problem):
    pair, X, y, Xv, yv = problem

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(zip(X, y))

    with pytest.raises(TypeError, match="map-style"):
        influence_scores(pair, DataLoader(Stream()), None, Xv, yv)

    class Bare(Dataset):
        def __len__(self):
            return len(X)

        def __getitem__(self, i):
            return torch.tensor(X[i])
    with pytest.raises(TypeError, match=r"\(x, y\) pair"):
        influence_scores(pair, Bare(), y, Xv, yv)


class _Miscounted(Dataset):
    """``n_items`` (x, y) items, but ``__len__`` says ``length``."""

    def __init__(self, X, y, n_items, length):
        self.X, self.y, self.n_items, self.length = X, y, n_items, length

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        if i >= self.n_items:
            raise IndexError(i)
        return torch.tensor(self.X[i]), int(self.y[i])


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("n_items, length, match", [
    (240, 200, r"__len__ is 200 but dataset\[200\] returns an item"),
    (200, 240, r"dataset\[239\] raised IndexError .* though the dataset's __len__ is 240"),
    (0, 0, r"the dataset is empty \(its __len__ is 0\)"),
])
def test_a_dataset_whose_len_is_not_its_item_count_is_refused(problem, wrap, n_items, length,
                                                              match):
    pair, X, y, Xv, yv = problem
    source = _Miscounted(X, y, n_items, length)
    source = DataLoader(source, batch_size=16) if wrap else source
    for labels in (None, y[:length]):
        with pytest.raises(ValueError, match=match):
            influence_scores(pair, source, labels, Xv, yv)
    if n_items:  # counted right, the same items give the in-memory scores
        ok = _Miscounted(X, y, n_items, n_items)
        np.testing.assert_allclose(influence_scores(pair, ok, None, Xv, yv),
                                   influence_scores(pair, X[:n_items], y[:n_items], Xv, yv),
                                   rtol=1e-6, atol=1e-9)


class _Items(Dataset):
    """The items of ``make(i)`` for i < n."""

    def __init__(self, n, make):
        self.n, self.make = n, make

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i >= self.n:
            raise IndexError(i)
        return self.make(i)


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_dataset_rows_are_cast_and_checked_as_arrays_are(problem, dtype):
    """Rows of another float dtype are cast to the model's, as an in-memory X is; NaN in one
    item, or items that are not (x, y) pairs, are refused as for arrays."""
    pair, X, y, Xv, yv = problem
    Xd = X.astype(dtype)
    rows = _Items(len(y), lambda i: (torch.from_numpy(Xd[i].copy()), int(y[i])))
    want = influence_scores(pair, Xd, y, Xv, yv, batch_size=50)  # the array, cast by the adapter
    np.testing.assert_allclose(influence_scores(pair, rows, None, Xv, yv, batch_size=50), want,
                               rtol=1e-6, atol=1e-7 * np.abs(want).max())
    bad = Xd.copy()
    bad[100, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        influence_scores(pair, _Items(len(y), lambda i: (torch.from_numpy(bad[i].copy()),
                                                         int(y[i]))), None, Xv, yv)
    with pytest.raises(TypeError, match=r"\(x, y\) pair"):
        influence_scores(pair, _Items(len(y), lambda i: (torch.from_numpy(Xd[i].copy()),)),
                         None, Xv, yv)


def test_rows_by_slice_and_by_index_list_are_the_tensors_rows(problem):
    """The row source's two reads against torch's own indexing, in the order asked."""
    from skinfluence.models._torch_rows import DatasetRows

    _, X, y, _, _ = problem
    rows = DatasetRows(TensorDataset(torch.tensor(X), torch.tensor(y)), torch.float64)
    T = torch.tensor(X, dtype=torch.float64)
    for index in ([7, 3, 3, 200, 0], torch.tensor([239, 1]), np.array([5])):
        torch.testing.assert_close(rows[index], T[torch.as_tensor(index)], rtol=0, atol=0)
    for cut in (slice(0, 1), slice(230, 400), slice(10, 50)):
        torch.testing.assert_close(rows[cut], T[cut], rtol=0, atol=0)
    assert rows.shape == (240, 4) and len(rows) == 240
    np.testing.assert_array_equal(rows.labels(), y)
