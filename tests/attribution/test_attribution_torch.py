"""influence_matrix on networks: rows equal per-row influence_scores; an independent check."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.func import functional_call, grad, vmap  # noqa: E402

from skinfluence import (ExactHessian, IPEnsemble, SampledHessian, influence_matrix,  # noqa: E402
                         influence_scores)

METHODS = ["ip", IPEnsemble(n_members=3), IPEnsemble(n_members=3, perturbation="gaussian"),
           "exact_hessian", SampledHessian(sampler="random", fraction=0.5),
           ExactHessian(solver="cg", damping=0.01)]


@pytest.fixture(scope="module")
def net64():
    """A float64 MLP trained on 3 classes (float64: the comparisons are exact to rounding)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.8)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
    Xte = rng.normal(size=(10, 4))
    yte = np.array([0, 1, 2, 1, 0, 2, 2, 0, 1, 1])
    return net.eval(), X, y, Xte, yte


def _path(monkeypatch, path):
    """Force how a block of directions is scored: "jvp" (one JVP per direction) or "rows"
    (per-row gradients times the block, from 8 directions on whatever the net)."""
    import skinfluence.models.torch as adapter

    monkeypatch.setattr(adapter, "ROW_GRADIENT_MIN_WORK", 0 if path == "rows" else np.inf)


@pytest.mark.parametrize("method", METHODS, ids=str)
@pytest.mark.parametrize("batch_size", [25, 4096])
@pytest.mark.parametrize("path", ["jvp", "rows"])
def test_net_rows_equal_per_row_influence_scores(net64, method, batch_size, path, monkeypatch):
    net, X, y, Xte, yte = net64
    kw = dict(loss=nn.CrossEntropyLoss(), batch_size=batch_size, random_state=0)
    ref = np.stack([influence_scores(net, X, y, Xte[j:j + 1], yte[j:j + 1], method=method, **kw)
                    for j in range(len(yte))])
    _path(monkeypatch, path)
    M = influence_matrix(net, X, y, Xte, yte, method=method, **kw)
    # CG stops at a relative residual of 1e-10: rounding-level differences of the
    # gradients can change its last iteration, so there the agreement is the solver's
    iterative = getattr(method, "solver", None) == "cg"
    atol = (1e-8 if iterative else 1e-12) * np.abs(ref).max()
    np.testing.assert_allclose(M, ref, rtol=1e-8, atol=atol)


@pytest.mark.parametrize("path", ["jvp", "rows"])
def test_net_ip_matrix_equals_per_sample_gradient_products(net64, path, monkeypatch):
    """Reference: per-sample gradients from torch.func.vmap(grad), written here, and
    M = G_test G_train^T."""
    net, X, y, Xte, yte = net64
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, x, t):
        out = functional_call(net, p, (x[None],))
        return nn.functional.cross_entropy(out, t[None])

    def flat_grads(Xa, ya):
        per_row = vmap(grad(loss), in_dims=(None, 0, 0))
        g = per_row(params, torch.from_numpy(Xa), torch.from_numpy(ya))
        return torch.cat([g[k].reshape(len(ya), -1) for k in params], 1).numpy()

    ref = flat_grads(Xte, yte) @ flat_grads(X, y).T
    _path(monkeypatch, path)
    for device in ("auto", "cpu"):
        for block in (4, 9, None):
            M = influence_matrix(net, X, y, Xte, yte, loss=nn.CrossEntropyLoss(),
                                 test_batch_size=block, device=device)
            np.testing.assert_allclose(M, ref, rtol=1e-10, atol=1e-14 * np.abs(ref).max())


def _counting_row_gradients(monkeypatch):
    import skinfluence.models.torch as adapter

    calls = []
    real = adapter.row_gradients_times

    def counted(*args):
        calls.append(args[-1].shape[1])
        return real(*args)

    monkeypatch.setattr(adapter, "row_gradients_times", counted)
    return calls


def test_weight_reuse_is_the_forward_pass_multiply_adds_per_parameter():
    from skinfluence.models import make_adapter

    mlp = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Flatten(), nn.Linear(3 * 36, 3))
    for net, X, macs in ((mlp, torch.zeros(2, 4), 4 * 8 + 8 * 3),
                         (conv, torch.zeros(2, 1, 6, 6), 3 * 9 * 36 + 108 * 3)):
        params = sum(p.numel() for p in net.parameters())
        adapter = make_adapter(net, loss=nn.CrossEntropyLoss())
        assert adapter.weight_reuse(X) == pytest.approx(macs / params)
    # only the chosen layers' work: the convolution's head alone applies each weight once
    head = make_adapter(conv, loss=nn.CrossEntropyLoss(), params="last_layer")
    assert head.weight_reuse(torch.zeros(2, 1, 6, 6)) == pytest.approx(108 * 3 / (108 * 3 + 3))


def test_a_block_takes_the_row_gradients_only_where_they_are_cheaper(net64, monkeypatch):
    """10 directions: the MLP (one multiply-add per weight) keeps its JVPs, a CNN (each
    weight at 36 positions) takes the per-row gradients; 40 directions: the MLP too."""
    net, X, y, Xte, yte = net64
    calls = _counting_row_gradients(monkeypatch)
    influence_matrix(net, X, y, Xte, yte, loss=nn.CrossEntropyLoss())
    assert calls == []
    wide = np.repeat(Xte, 4, axis=0)
    influence_matrix(net, X, y, wide, np.repeat(yte, 4), loss=nn.CrossEntropyLoss())
    assert calls == [40]
    cnn = FlatInput(BatchNormCNN().double()).eval()
    rng = np.random.default_rng(0)
    Xc, yc = rng.normal(size=(30, 38)), rng.integers(0, 3, 30)
    influence_matrix(cnn, Xc, yc, Xc[:10], yc[:10], loss=nn.CrossEntropyLoss())
    assert calls == [40, 10]


class BatchNormCNN(nn.Module):
    """Convolution, batch norm (eval: its running statistics), max-pool, linear; the image
    comes flat, or as a dict ``{"image", "extra"}`` (skorch's dict inputs)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(3 * 3 * 3 + 2, 3)

    def forward(self, image, extra):
        z = self.features(image.reshape(-1, 1, 6, 6)).flatten(1)
        return self.head(torch.cat([z, extra], 1))


class DictInput(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image, extra):
        return self.net(image, extra)


class FlatInput(DictInput):
    def forward(self, X):
        return self.net(X[:, :36], X[:, 36:])


@pytest.mark.parametrize("n_test", [3, 12])
@pytest.mark.parametrize("as_dict", [False, True])
def test_cnn_ip_matrix_equals_per_sample_gradient_products(n_test, as_dict):
    """Both scoring paths (3 test rows: JVPs; 12: per-row gradients, the CNN reusing each
    weight ~8 times) on a batch-norm CNN, flat or dict input, against G_test G_train^T
    built here with vmap(grad)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 38))
    y = rng.integers(0, 3, 40)
    torch.manual_seed(0)
    cnn = BatchNormCNN().double()
    with torch.no_grad():  # running statistics away from (0, 1), as after training
        cnn.features[1].running_mean.copy_(torch.tensor([0.3, -0.2, 0.1]))
        cnn.features[1].running_var.copy_(torch.tensor([2.0, 0.5, 1.5]))
    cnn.eval()
    net = DictInput(cnn) if as_dict else FlatInput(cnn)
    rows = {"image": X[:, :36], "extra": X[:, 36:]} if as_dict else X
    params = {k: v.detach() for k, v in cnn.named_parameters()}

    def loss(p, x, t):
        out = functional_call(cnn, p, (x[None, :36], x[None, 36:]))
        return nn.functional.cross_entropy(out, t[None])

    def flat_grads(Xa, ya):
        per_row = vmap(grad(loss), in_dims=(None, 0, 0))
        g = per_row(params, torch.from_numpy(Xa), torch.from_numpy(ya))
        return torch.cat([g[k].reshape(len(ya), -1) for k in params], 1).numpy()

    ref = flat_grads(X[:n_test], y[:n_test]) @ flat_grads(X, y).T
    test_rows = {k: v[:n_test] for k, v in rows.items()} if as_dict else X[:n_test]
    M = influence_matrix(net, rows, y, test_rows, y[:n_test], loss=nn.CrossEntropyLoss())
    np.testing.assert_allclose(M, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


def test_skorch_float32_rows_match_per_row_calls():
    skorch = pytest.importorskip("skorch")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 5)).astype("float32")
    y = (X[:, 0] > 0).astype("int64")
    torch.manual_seed(0)
    net = skorch.NeuralNetClassifier(
        nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2), nn.Softmax(-1)),
        max_epochs=5, lr=0.1, train_split=None, verbose=0).fit(X, y)
    ref = np.stack([influence_scores(net, X, y, X[j:j + 1], y[j:j + 1], method="exact_hessian")
                    for j in range(4)])
    M = influence_matrix(net, X, y, X[:4], y[:4], method="exact_hessian")
    # float32 passes: a batched JVP sums in another order than a single one
    np.testing.assert_allclose(M, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_newton_loo_on_a_net_is_refused(net64):
    net, X, y, Xte, yte = net64
    with pytest.raises(TypeError, match="NewtonLOO"):
        influence_matrix(net, X, y, Xte, yte, method="newton_loo", loss=nn.CrossEntropyLoss())
