"""ExactHessian(curvature="gauss_newton") against a Gauss-Newton matrix built by hand.

The reference is written from the formula ``G = mean_i J_i^T (hess_f l_i) J_i +
decay I``: per-row output Jacobians ``J_i`` by torch autograd in float64, and
the loss's Hessian in the output written out (softmax ``diag(p) - p p^T``,
logistic ``p (1 - p)``, squared error ``2``), never the package's products.
"""
import numpy as np
import pytest
from sklearn.datasets import make_classification

from skinfluence import ExactHessian, influence_scores
from tests._reference import correlations, exact_logistic, flat_float64_parameters

torch = pytest.importorskip("torch")
nn = torch.nn
from torch.func import functional_call  # noqa: E402

DECAY = 1e-3


def _data(kind, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(160, 4)).astype("float32")
    Xv = rng.normal(size=(40, 4)).astype("float32")
    if kind == "regression":
        f = (lambda A: np.sin(A[:, 0]) + A[:, 1] * A[:, 2])
        return X, f(X).astype("float32"), Xv, f(Xv).astype("float32")
    classes = 3 if kind == "multiclass" else 2
    f = (lambda A: ((np.abs(A[:, 0]) + A[:, 1] > 1).astype("int64")
                    + (classes == 3) * (A[:, 2] > 0.5)))
    return X, f(X), Xv, f(Xv)


def _trained(kind, seed=0):
    X, y, Xv, yv = _data(kind, seed)
    outputs = {"multiclass": 3, "binary": 1, "regression": 1}[kind]
    torch.manual_seed(seed)
    module = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, outputs))
    loss = {"multiclass": nn.CrossEntropyLoss(), "binary": nn.BCEWithLogitsLoss(),
            "regression": nn.MSELoss()}[kind]
    opt = torch.optim.Adam(module.parameters(), lr=0.03, weight_decay=DECAY)
    Xt = torch.tensor(X)
    yt = torch.tensor(y) if kind == "multiclass" else torch.tensor(y, dtype=torch.float32)
    for _ in range(200):
        opt.zero_grad()
        out = module(Xt)
        loss(out if kind == "multiclass" else out[:, 0], yt).backward()
        opt.step()
    return module.eval(), loss, (X, y, Xv, yv)


def _reference(module, kind, X, y, Xv, yv):
    """Float64 G, validation gradient and per-row training gradients, by autograd."""
    theta, unflat = flat_float64_parameters(module)
    copy = module.double()

    def outputs(t, A):
        return functional_call(copy, unflat(t), (torch.tensor(A).double(),))

    def losses(t, A, b):
        out = outputs(t, A)
        if kind == "multiclass":
            return nn.functional.cross_entropy(out, torch.tensor(b), reduction="none")
        if kind == "binary":
            return nn.functional.binary_cross_entropy_with_logits(
                out[:, 0], torch.tensor(b).double(), reduction="none")
        return (out[:, 0] - torch.tensor(b).double()) ** 2

    J = torch.autograd.functional.jacobian(lambda t: outputs(t, X), theta).numpy()  # (n, K, P)
    F = outputs(theta, X).detach().numpy()
    if kind == "multiclass":
        p = np.exp(F - F.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        H_out = np.einsum("ik,kl->ikl", p, np.eye(p.shape[1])) - p[:, :, None] * p[:, None, :]
    elif kind == "binary":
        p = 1 / (1 + np.exp(-F[:, 0]))
        H_out = (p * (1 - p))[:, None, None]
    else:
        H_out = np.full((len(X), 1, 1), 2.0)
    G = np.einsum("ikp,ikl,ilq->pq", J, H_out, J) / len(X) + DECAY * np.eye(len(theta))
    g = torch.autograd.functional.jacobian(lambda t: losses(t, Xv, yv).mean(), theta).numpy()
    grads = torch.autograd.functional.jacobian(lambda t: losses(t, X, y), theta).numpy()
    module.float()
    return G, g, grads


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
@pytest.mark.parametrize("damping", [1e-4, 1e-2])
def test_gauss_newton_scores_match_the_hand_built_matrix(kind, damping):
    module, loss, (X, y, Xv, yv) = _trained(kind)
    G, g, grads = _reference(module, kind, X, y, Xv, yv)
    expected = grads @ np.linalg.solve(G + damping * np.eye(len(G)), g)
    for solver in ("cholesky", "cg"):
        res = influence_scores((module, loss), X, y, Xv, yv, weight_decay=DECAY,
                               method=ExactHessian(curvature="gauss_newton", damping=damping,
                                                   solver=solver), return_result=True)
        assert res.damping == damping
        np.testing.assert_allclose(res.scores, expected, rtol=2e-3,
                                   atol=2e-3 * np.abs(expected).max())


def _ending(kind, module, ending):
    """The trained logits net ending in probabilities or log-probabilities, with the loss
    that trains it to the same objective (a skorch classifier for the softmax)."""
    if ending == "log_softmax + NLLLoss":
        return nn.Sequential(module, nn.LogSoftmax(-1)), nn.NLLLoss()
    if ending == "sigmoid + BCELoss":
        return nn.Sequential(module, nn.Sigmoid()), nn.BCELoss()
    skorch = pytest.importorskip("skorch")
    X, y, _, _ = _data(kind)
    # lr=0: one epoch of skorch's fit leaves the trained weights as they are
    net = skorch.NeuralNetClassifier(nn.Sequential(module, nn.Softmax(-1)), max_epochs=1,
                                     lr=0.0, train_split=None, verbose=0).fit(X, y)
    return net, None


ENDINGS = [("multiclass", "log_softmax + NLLLoss"), ("multiclass", "skorch softmax + NLLLoss"),
           ("binary", "sigmoid + BCELoss")]


@pytest.mark.parametrize("kind, ending", ENDINGS)
@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_probability_outputs_take_the_gauss_newton_matrix_of_their_logits(kind, ending, solver):
    """Through log-probabilities and NLLLoss the loss is linear (zero curvature); through
    probabilities it is not convex. Either way the matrix is the logits' one."""
    module, _, (X, y, Xv, yv) = _trained(kind)
    G, g, grads = _reference(module, kind, X, y, Xv, yv)
    expected = grads @ np.linalg.solve(G + 1e-2 * np.eye(len(G)), g)
    net, loss = _ending(kind, module, ending)
    estimator = net if loss is None else (net, loss)
    scores = influence_scores(estimator, X, y, Xv, yv, weight_decay=DECAY,
                              method=ExactHessian(curvature="gauss_newton", damping=1e-2,
                                                  solver=solver))
    np.testing.assert_allclose(scores, expected, rtol=2e-3, atol=2e-3 * np.abs(expected).max())


def test_auto_damping_is_a_fraction_of_the_largest_eigenvalue_and_differs_from_the_hessian():
    module, loss, (X, y, Xv, yv) = _trained("multiclass", seed=1)
    G, g, grads = _reference(module, "multiclass", X, y, Xv, yv)
    top = np.linalg.eigvalsh(G)[-1]
    res = {s: influence_scores((module, loss), X, y, Xv, yv, weight_decay=DECAY,
                               method=ExactHessian(curvature="gauss_newton", solver=s),
                               return_result=True) for s in ("cholesky", "cg")}
    for r in res.values():  # 20 Lanczos steps find the top eigenvalue of a 59 x 59 matrix
        assert r.damping == pytest.approx(1e-2 * top, rel=1e-3)
        expected = grads @ np.linalg.solve(G + r.damping * np.eye(len(G)), g)
        assert correlations(r.scores, expected)[0] >= 0.9999
    hessian = influence_scores((module, loss), X, y, Xv, yv, weight_decay=DECAY,
                               method=ExactHessian(solver="cholesky"))
    assert not np.allclose(res["cholesky"].scores, hessian, rtol=1e-2)


def test_gauss_newton_on_a_linear_model_is_its_hessian():
    X, y = make_classification(n_samples=120, n_features=5, random_state=0)
    model = exact_logistic(C=0.3).fit(X[:90], y[:90])
    for damping in ("auto", 1e-2):
        a, b = (influence_scores(model, X[:90], y[:90], X[90:], y[90:],
                                 method=ExactHessian(curvature=c, damping=damping))
                for c in ("hessian", "gauss_newton"))
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("curvature", ["fisher", None])
def test_an_unknown_curvature_is_refused_by_name(curvature):
    X, y = make_classification(n_samples=60, n_features=3, n_informative=2, n_redundant=0,
                               random_state=0)
    model = exact_logistic().fit(X, y)
    with pytest.raises(ValueError, match="curvature"):
        influence_scores(model, X, y, X, y, method=ExactHessian(curvature=curvature))


def test_boosted_trees_refuse_the_gauss_newton_curvature_by_name():
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    model = HistGradientBoostingClassifier(max_iter=5, early_stopping=False).fit(X, y)
    with pytest.raises(ValueError, match="curvature='gauss_newton'.*leave curvature='hessian'"):
        influence_scores(model, X, y, X, y, method=ExactHessian(curvature="gauss_newton"))
