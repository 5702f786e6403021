"""KFAC against the exact inverse Hessian where the Kronecker factorisation is exact.

One Linear layer whose output Hessian is the same for every row (zero
weights: equal logits, so the softmax / sigmoid Hessian is constant): the
mean-form Hessian is exactly ``A kron B``. Reference: the influence written
from the formula with torch autograd (per-sample gradients, the objective's
Hessian) and numpy's solve.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from skinfluence import ExactHessian, KFAC, influence_scores  # noqa: E402


def _data(k, n=70, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + 20, d))
    y = rng.integers(0, k, size=n + 20)
    return X[:n], y[:n], X[n:], y[n:]


def _zero_linear(d, out, bias):
    lin = nn.Linear(d, out, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        for p in lin.parameters():
            p.zero_()
    return lin


def reference(features, y, Xv, yv, params, loss_of, damping, decay=0.0):
    """<(H + (decay + damping) I)^-1 grad J, grad l_i> for the last Linear layer's
    parameters ``params`` (flattened), on fixed ``features`` (its inputs)."""
    sizes = [p.numel() for p in params]
    theta = torch.cat([p.detach().reshape(-1) for p in params]).double()

    def out(th, F):
        W = th[:sizes[0]].reshape(params[0].shape)
        z = torch.as_tensor(F) @ W.T
        return z + th[sizes[0]:] if len(sizes) > 1 else z

    def losses(th, F, t):
        return loss_of(out(th, F), torch.as_tensor(t))

    H = torch.autograd.functional.hessian(lambda th: losses(th, features[0], y).mean(),
                                          theta).numpy()
    gJ = torch.autograd.functional.jacobian(lambda th: losses(th, features[1], yv).mean(),
                                            theta).numpy()
    G = torch.autograd.functional.jacobian(lambda th: losses(th, features[0], y), theta).numpy()
    return G @ np.linalg.solve(H + (decay + damping) * np.eye(len(theta)), gJ)


def _ce(z, t):
    return nn.functional.cross_entropy(z, t, reduction="none")


def _bce(z, t):
    return nn.functional.binary_cross_entropy_with_logits(z[:, 0], t.double(), reduction="none")


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("damping", [1e-3, 0.3])
def test_one_linear_layer_softmax_equals_the_exact_inverse(k, bias, damping):
    X, y, Xv, yv = _data(k)
    lin = _zero_linear(X.shape[1], k, bias)
    got = influence_scores(lin, X, y, Xv, yv, loss=nn.CrossEntropyLoss(),
                           method=KFAC(damping=damping))
    expected = reference((X, Xv), y, Xv, yv, list(lin.parameters()), _ce, damping)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("decay", [0.0, 0.05])
def test_one_logistic_output_with_weight_decay_equals_the_exact_inverse(decay):
    X, y, Xv, yv = _data(2)
    lin = _zero_linear(X.shape[1], 1, True)
    got = influence_scores(lin, X, y, Xv, yv, loss=nn.BCEWithLogitsLoss(),
                           method="kfac", weight_decay=decay)
    expected = reference((X, Xv), y, Xv, yv, list(lin.parameters()), _bce, 1e-3, decay)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def test_last_layer_of_a_cnn_equals_the_exact_inverse_on_its_features():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten()).double()
    net = nn.Sequential(body, _zero_linear(2 * 16, 3, True))
    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(50, 1, 6, 6)), rng.normal(size=(15, 1, 6, 6))
    y, yv = rng.integers(0, 3, 50), rng.integers(0, 3, 15)
    got = influence_scores(net, X, y, Xv, yv, loss=nn.CrossEntropyLoss(),
                           method=KFAC(damping=0.01), params="last_layer")
    with torch.no_grad():
        features = (body(torch.as_tensor(X)).numpy(), body(torch.as_tensor(Xv)).numpy())
    expected = reference(features, y, Xv, yv, list(net[1].parameters()), _ce, 0.01)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("damping", [1e-3, 0.3])
def test_influence_matrix_gives_one_exact_row_per_test_row(damping):
    from skinfluence import influence_matrix

    X, y, Xv, yv = _data(3)
    lin = _zero_linear(X.shape[1], 3, True)  # equal logits: K-FAC is the exact inverse
    got = influence_matrix(lin, X, y, Xv[:4], yv[:4], loss=nn.CrossEntropyLoss(),
                           method=KFAC(damping=damping), test_batch_size=3)
    assert got.shape == (4, len(y))
    for j in range(4):
        expected = reference((X, Xv[j:j + 1]), y, Xv[j:j + 1], yv[j:j + 1],
                             list(lin.parameters()), _ce, damping)
        np.testing.assert_allclose(got[j], expected, rtol=1e-9,
                                   atol=1e-12 * np.abs(expected).max())


def test_not_exact_where_the_output_hessian_varies():
    X, y, Xv, yv = _data(3)
    torch.manual_seed(0)
    lin = nn.Linear(X.shape[1], 3, dtype=torch.float64)  # unequal logits: A kron B is approximate
    got = influence_scores(lin, X, y, Xv, yv, loss=nn.CrossEntropyLoss(), method=KFAC(0.01))
    expected = reference((X, Xv), y, Xv, yv, list(lin.parameters()), _ce, 0.01)
    assert np.abs(got - expected).max() > 1e-4 * np.abs(expected).max()


def test_refused_outside_linear_layers_and_classification_losses():
    from sklearn.linear_model import LogisticRegression

    X, y, Xv, yv = _data(2)
    with pytest.raises(TypeError, match="torch network"):
        influence_scores(LogisticRegression().fit(X, y), X, y, Xv, yv, method="kfac")
    conv = nn.Sequential(nn.Conv1d(1, 2, 2), nn.Flatten(), nn.Linear(6, 2)).double()
    with pytest.raises(TypeError, match="not a Linear layer"):
        influence_scores(conv, X[:, None, :], y, Xv[:, None, :], yv,
                         loss=nn.CrossEntropyLoss(), method="kfac")
    with pytest.raises(TypeError, match="CrossEntropyLoss or BCEWithLogitsLoss"):
        influence_scores(nn.Sequential(nn.Linear(4, 2), nn.LogSoftmax(1)).double(), X, y, Xv,
                         yv, loss=nn.NLLLoss(), method="kfac")
    with pytest.raises(InvalidParameterError, match="damping"):
        influence_scores(_zero_linear(4, 2, True), X, y, Xv, yv, loss=nn.CrossEntropyLoss(),
                         method=KFAC(damping=0.0))


def test_an_mlp_classifier_is_factored_layer_by_layer():
    from sklearn.neural_network import MLPClassifier

    X, y, Xv, yv = _data(3, n=120)
    mlp = MLPClassifier((6,), solver="lbfgs", max_iter=2000, random_state=0).fit(X, y)
    kfac = influence_scores(mlp, X, y, Xv, yv, method="kfac")
    exact = influence_scores(mlp, X, y, Xv, yv, method=ExactHessian(damping=1.0))
    assert kfac.shape == (120,) and np.isfinite(kfac).all()
    assert not np.allclose(kfac, exact)  # two layers: the cross-layer blocks are dropped


@pytest.mark.parametrize("damping", [1e-3, 0.3])
@pytest.mark.parametrize("k", [2, 4])
def test_sample_weights_enter_the_factors_as_the_exact_hessian_weighs_rows(damping, k):
    X, y, Xv, yv = _data(k)
    w = np.random.default_rng(3).uniform(0.1, 3.0, len(y))
    w[:5] = 0.0  # rows left out of the fit
    lin = _zero_linear(X.shape[1], k, True)  # equal logits: K-FAC is exact, weights or not
    got = influence_scores(lin, X, y, Xv, yv, loss=nn.CrossEntropyLoss(), sample_weight=w,
                           method=KFAC(damping=damping))
    exact = influence_scores(lin, X, y, Xv, yv, loss=nn.CrossEntropyLoss(), sample_weight=w,
                             method=ExactHessian(damping=damping))
    np.testing.assert_allclose(got, exact, rtol=1e-9, atol=1e-12 * np.abs(exact).max())
    unweighted = influence_scores(lin, X, y, Xv, yv, loss=nn.CrossEntropyLoss(),
                                  method=KFAC(damping=damping))
    assert not np.allclose(got, unweighted)  # the weights do move the scores
    assert np.all(got[:5] == 0.0)
