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
    Xte = rng.normal(size=(6, 4))
    yte = np.array([0, 1, 2, 1, 0, 2])
    return net.eval(), X, y, Xte, yte


@pytest.mark.parametrize("method", METHODS, ids=str)
@pytest.mark.parametrize("batch_size", [25, 4096])
def test_net_rows_equal_per_row_influence_scores(net64, method, batch_size):
    net, X, y, Xte, yte = net64
    kw = dict(loss=nn.CrossEntropyLoss(), batch_size=batch_size, random_state=0)
    ref = np.stack([influence_scores(net, X, y, Xte[j:j + 1], yte[j:j + 1], method=method, **kw)
                    for j in range(len(yte))])
    M = influence_matrix(net, X, y, Xte, yte, method=method, **kw)
    # CG stops at a relative residual of 1e-10: rounding-level differences of the
    # gradients can change its last iteration, so there the agreement is the solver's
    iterative = getattr(method, "solver", None) == "cg"
    atol = (1e-8 if iterative else 1e-12) * np.abs(ref).max()
    np.testing.assert_allclose(M, ref, rtol=1e-8, atol=atol)


def test_net_ip_matrix_equals_per_sample_gradient_products(net64):
    """Reference: per-sample gradients from torch.func.vmap(grad), written here (the
    library never builds them), and M = G_test G_train^T."""
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
    for device in ("auto", "cpu"):
        M = influence_matrix(net, X, y, Xte, yte, loss=nn.CrossEntropyLoss(), test_batch_size=4,
                             device=device)
        np.testing.assert_allclose(M, ref, rtol=1e-10, atol=1e-14 * np.abs(ref).max())


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
