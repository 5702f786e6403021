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


@pytest.mark.parametrize("ending", ["log_softmax + NLLLoss", "softmax + NLLLoss (skorch)",
                                    "sigmoid + BCELoss"])
@pytest.mark.parametrize("damping", [1e-3, 0.3])
def test_probability_outputs_are_factored_through_their_logits(ending, damping):
    """A Linear layer ending in (log-)probabilities trains the same log-loss as its logits;
    its K-FAC is the exact inverse of that loss's Hessian, as for the logits."""
    binary = ending.startswith("sigmoid")
    X, y, Xv, yv = _data(2 if binary else 3)
    lin = _zero_linear(X.shape[1], 1 if binary else 3, True)
    if ending == "log_softmax + NLLLoss":
        model = (nn.Sequential(lin, nn.LogSoftmax(-1)), nn.NLLLoss())
    elif binary:
        model = (nn.Sequential(lin, nn.Sigmoid()), nn.BCELoss())
    else:
        skorch = pytest.importorskip("skorch")
        model = skorch.NeuralNetClassifier(nn.Sequential(lin, nn.Softmax(-1)), max_epochs=1,
                                           lr=0.0, train_split=None, verbose=0).fit(X, y)
    got = influence_scores(model, X, y, Xv, yv, method=KFAC(damping=damping))
    expected = reference((X, Xv), y, Xv, yv, list(lin.parameters()), _bce if binary else _ce,
                         damping)
    # skorch's loss is NLL(log(p + eps)): equal to the logits' up to eps
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize("scale", [0.5, 10.0])
@pytest.mark.parametrize("loss", ["CrossEntropyLoss", "NLLLoss"])
def test_equal_class_weights_scale_the_exact_inverse(scale, loss):
    """Class weights all equal to ``scale``: the loss and its Hessian are scaled by it,
    and K-FAC, still exact on one Linear layer, follows (it ignored class weights)."""
    X, y, Xv, yv = _data(3)
    lin = _zero_linear(X.shape[1], 3, True)
    weight = torch.full((3,), scale, dtype=torch.float64)
    model = (lin, nn.CrossEntropyLoss(weight=weight)) if loss == "CrossEntropyLoss" else \
        (nn.Sequential(lin, nn.LogSoftmax(-1)), nn.NLLLoss(weight=weight))
    got = influence_scores(model, X, y, Xv, yv, method=KFAC(damping=1e-3))
    expected = reference((X, Xv), y, Xv, yv, list(lin.parameters()),
                         lambda z, t: scale * _ce(z, t), 1e-3)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("options", [dict(weight=[0.5, 2.0, 3.0]),
                                     dict(weight=[0.5, 2.0, 3.0], label_smoothing=0.2),
                                     dict(ignore_index=1), dict(label_smoothing=0.1)], ids=str)
def test_class_weights_smoothing_and_ignored_labels_weigh_each_rows_hessian(options):
    """Every input row once with each label, so a row's label says nothing of its
    features: K-FAC stays exact on one zero Linear layer while the rows' Hessians differ
    by their class weight (mixed by label smoothing; 0 for an ignored label)."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(25, 4))
    X, y = np.repeat(base, 3, axis=0), np.tile([0, 1, 2], 25)
    Xv, yv = rng.normal(size=(10, 4)), rng.integers(0, 3, 10)
    lin = _zero_linear(4, 3, True)
    kw = {k: torch.tensor(v, dtype=torch.float64) if k == "weight" else v
          for k, v in options.items()}
    got = influence_scores(lin, X, y, Xv, yv, loss=nn.CrossEntropyLoss(**kw),
                           method=KFAC(damping=1e-3))
    expected = reference((X, Xv), y, Xv, yv, list(lin.parameters()),
                         lambda z, t: nn.functional.cross_entropy(z, t, reduction="none", **kw),
                         1e-3)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("pos_weight", [0.3, 4.0])
def test_pos_weight_enters_the_output_factor_row_by_row(pos_weight):
    """BCEWithLogitsLoss(pos_weight): a positive row's Hessian in the logit is pos_weight
    p (1 - p). On one zero Linear layer K-FAC is then mean(a a^T) x mean(0.25 f_i),
    f_i = pos_weight for positive rows and 1 else, written out here."""
    X, y, Xv, yv = _data(2)
    lin = _zero_linear(X.shape[1], 1, True)
    pw = torch.tensor([pos_weight], dtype=torch.float64)
    got = influence_scores(lin, X, y, Xv, yv, loss=nn.BCEWithLogitsLoss(pos_weight=pw),
                           method=KFAC(damping=1e-3))
    theta = torch.zeros(X.shape[1] + 1, dtype=torch.float64)

    def losses(th, F, t):
        z = torch.as_tensor(F) @ th[:-1] + th[-1]
        return nn.functional.binary_cross_entropy_with_logits(
            z, torch.as_tensor(t).double(), pos_weight=pw, reduction="none")

    a = np.hstack([X, np.ones((len(X), 1))])
    f = np.where(y == 1, pos_weight, 1.0)
    G = (a.T @ a / len(X)) * np.mean(0.25 * f)
    gJ = torch.autograd.functional.jacobian(lambda th: losses(th, Xv, yv).mean(), theta).numpy()
    rows = torch.autograd.functional.jacobian(lambda th: losses(th, X, y), theta).numpy()
    expected = rows @ np.linalg.solve(G + 1e-3 * np.eye(len(G)), gJ)
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


def test_refused_without_a_factorable_layer_or_a_classification_loss():
    from sklearn.linear_model import LogisticRegression

    X, y, Xv, yv = _data(2)
    with pytest.raises(TypeError, match="torch network"):
        influence_scores(LogisticRegression().fit(X, y), X, y, Xv, yv, method="kfac")
    grouped = nn.Sequential(nn.Conv1d(2, 2, 2, groups=2), nn.Flatten()).double()
    with pytest.raises(TypeError, match="none of the chosen parameters"):
        influence_scores(grouped, X.reshape(-1, 2, 2), y, Xv.reshape(-1, 2, 2), yv,
                         loss=nn.CrossEntropyLoss(), method="kfac")
    with pytest.raises(TypeError, match="classification loss"):
        influence_scores(nn.Sequential(nn.Linear(4, 1)).double(), X, y.astype(float), Xv,
                         yv.astype(float), loss=nn.MSELoss(), method="kfac")
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


# ---------------------------------------------------------------------------- convolutions
def _patch_rows(x, k, dims):
    """Each output position's receptive field, by explicit loops: (n, positions, C * k...)."""
    n, C = x.shape[:2]
    if dims == 1:
        L = x.shape[2] - k + 1
        return np.stack([x[:, :, pos:pos + k].reshape(n, -1) for pos in range(L)], 1)
    H, W = x.shape[2] - k + 1, x.shape[3] - k + 1
    return np.stack([x[:, :, r:r + k, c:c + k].reshape(n, -1)
                     for r in range(H) for c in range(W)], 1)


def _kfac_by_hand(net, conv, lin, X, y, Xv, yv, damping, dims, corrected=False):
    """K-FAC / KFC scores from factors built here: patches by loops, output gradients by
    autograd per Hessian root, the Kronecker solve with numpy's kron."""
    Xt = torch.as_tensor(X)
    n = len(X)
    acts = {}
    h1 = conv.register_forward_hook(lambda m, i, o: acts.__setitem__("conv", (i[0], o)))
    h2 = lin.register_forward_hook(lambda m, i, o: acts.__setitem__("lin", (i[0], o)))
    out = net(Xt)
    h1.remove()
    h2.remove()
    p = torch.softmax(out.detach(), 1)
    K = out.shape[1]
    roots = [torch.sqrt(p[:, k:k + 1]) * (torch.eye(K, dtype=p.dtype)[k] - p) for k in range(K)]
    a_conv = _patch_rows(X, conv.kernel_size[0], dims)
    a_conv = np.concatenate([a_conv, np.ones(a_conv.shape[:2] + (1,))], -1)
    a_lin = acts["lin"][0].detach().numpy()
    a_lin = np.concatenate([a_lin, np.ones((n, 1))], 1)
    A_conv = np.einsum("nlf,nlg->fg", a_conv, a_conv) / n
    A_lin = a_lin.T @ a_lin / n
    B_conv, B_lin = 0.0, 0.0
    per_root = []  # each row's weight gradients along each root: [(conv, linear)]
    for r in roots:
        g_conv, g_lin = torch.autograd.grad(out, [acts["conv"][1], acts["lin"][1]],
                                            grad_outputs=r, retain_graph=True)
        g_conv = g_conv.detach().numpy().reshape(n, conv.out_channels, -1).transpose(0, 2, 1)
        L = g_conv.shape[1]
        B_conv = B_conv + np.einsum("nlf,nlg->fg", g_conv, g_conv) / n / L
        g = g_lin.detach().numpy()
        B_lin = B_lin + g.T @ g / n
        per_root.append((np.einsum("nlo,nli->noi", g_conv, a_conv),
                         np.einsum("no,ni->noi", g, a_lin)))

    def grads(X_rows, y_rows):
        rows = []
        for i in range(len(X_rows)):
            net.zero_grad()
            loss = nn.functional.cross_entropy(net(torch.as_tensor(X_rows[i:i + 1])),
                                               torch.as_tensor(y_rows[i:i + 1]))
            loss.backward()
            rows.append([np.concatenate([conv.weight.grad.numpy().reshape(conv.out_channels, -1),
                                         conv.bias.grad.numpy()[:, None]], 1),
                         np.concatenate([lin.weight.grad.numpy(),
                                         lin.bias.grad.numpy()[:, None]], 1)])
        return rows

    train = grads(X, y)
    val = grads(Xv, yv)
    scores = np.zeros(n)
    for layer, (A, B) in enumerate([(A_conv, B_conv), (A_lin, B_lin)]):
        gJ = np.mean([v[layer] for v in val], axis=0)
        if corrected:  # EK-FAC: the Gauss-Newton diagonal in the factors' eigenbasis
            _, Ua = np.linalg.eigh(A)
            _, Ub = np.linalg.eigh(B)
            lam = sum((Ub.T @ G @ Ua) ** 2 for grads_r in per_root
                      for G in grads_r[layer]) / n
            V = Ub @ ((Ub.T @ gJ @ Ua) / (lam + damping)) @ Ua.T
            for i, g in enumerate(train):
                scores[i] += np.sum(V * g[layer])
            continue
        # (A kron B) vec(M) = vec(B M A^T) with column-major vec
        M = np.linalg.solve(np.kron(A, B) + damping * np.eye(A.size * 0 + len(A) * len(B)),
                            gJ.flatten(order="F"))
        for i, g in enumerate(train):
            scores[i] += M @ g[layer].flatten(order="F")
    return scores


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("damping", [1e-3, 0.1])
@pytest.mark.parametrize("corrected", [False, True])
def test_conv_layers_factored_as_kfc_from_unfolded_patches(dims, damping, corrected):
    rng = np.random.default_rng(0)
    side = 5
    shape = (1, side) if dims == 1 else (1, side, side)
    X = rng.normal(size=(40,) + shape)
    y = rng.integers(0, 3, 40)
    Xv, yv = rng.normal(size=(15,) + shape), rng.integers(0, 3, 15)
    torch.manual_seed(0)
    conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(1, 2, 3).double()
    width = 2 * (side - 2) ** dims
    lin = nn.Linear(width, 3).double()
    net = nn.Sequential(conv, nn.Tanh(), nn.Flatten(), lin)
    got = influence_scores(net, X, y, Xv, yv, loss=nn.CrossEntropyLoss(),
                           method=KFAC(damping=damping, eigen_correction=corrected))
    expected = _kfac_by_hand(net, conv, lin, X, y, Xv, yv, damping, dims, corrected)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9 * np.abs(expected).max())


def test_batch_norm_is_named_and_preconditioned_by_the_mean_curvature():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 1, 6, 6))
    y = rng.integers(0, 2, 50)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(48, 2)).double().eval()
    with pytest.warns(UserWarning, match="'1.weight', '1.bias'"):
        res = influence_scores(net, X, y, X[:10], y[:10], loss=nn.CrossEntropyLoss(),
                               method=KFAC(damping=0.01), return_result=True)
    assert res.extras["unfactored"] == ["1.weight", "1.bias"]
    assert np.isfinite(res.scores).all()
    # the same scores with the batch norm left out of the parameters are not these:
    # its identity-preconditioned share is part of every score
    only = influence_scores(net, X, y, X[:10], y[:10], loss=nn.CrossEntropyLoss(),
                            method=KFAC(damping=0.01), params=["0.weight", "0.bias",
                                                               "4.weight", "4.bias"])
    assert not np.allclose(res.scores, only)
