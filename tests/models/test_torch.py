"""Torch / skorch adapter against independent references.

References are written here from scratch (``torch.nn.functional`` losses,
``vmap(grad)`` per-sample gradients, ``torch.func.hessian``, the linear
adapter) and never go through the adapter's own loss or direction code.
"""
import copy
import pickle

import numpy as np
from scipy.stats import spearmanr
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.func import functional_call, grad, vmap

from skinfluence import (AdversarialRobustness, DemographicParity, ExactHessian, IP,
                         IPEnsemble, SampledHessian, Utility, influence_scores)
from skinfluence.datasets import make_flipped_moons
from skinfluence.models import make_adapter
from skinfluence.models.torch import TorchModelAdapter
from tests._margins import TRAIN_SEED, record_statistic

skorch = pytest.importorskip("skorch")
from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier  # noqa: E402

EPS32 = torch.finfo(torch.float32).eps


# ---------------------------------------------------------------- helpers
def mlp(d_in, d_out, hidden=16, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    layers = [nn.Linear(d_in, hidden), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


def cnn(n_classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, n_classes))


def train(module, loss_fn, X, y, *, epochs=30, lr=0.02, weight_decay=0.0, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        opt.zero_grad()
        loss_fn(module(X), y).backward()
        opt.step()
    return module.eval()


def ref_loss(kind, out, y):
    """Per-sample loss written independently of the adapter."""
    if kind == "ce":
        return F.cross_entropy(out, y, reduction="none")
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(out.reshape(-1), y.float(), reduction="none")
    if kind == "nll_proba":  # skorch NeuralNetClassifier's default
        return F.nll_loss(torch.log(out + EPS32), y, reduction="none")
    raise AssertionError(kind)


def ref_proba(kind, out):
    if kind == "ce":
        return torch.softmax(out, -1)
    if kind == "bce":
        p = torch.sigmoid(out.reshape(-1))
        return torch.stack([1 - p, p], 1)
    return out


def params_of(module, names=None):
    return {k: v.detach().clone() for k, v in module.named_parameters()
            if names is None or k in names}


def flat(d):
    return torch.cat([t.reshape(-1) for t in d.values()])


def per_sample_grads(module, kind, X, y, names=None):
    """(n, P) matrix of per-sample gradients, vmap(grad) reference."""
    params = params_of(module, names)

    def one(p, x, t):
        return ref_loss(kind, functional_call(module, p, (x[None],)), t[None])[0]

    G = vmap(grad(one), in_dims=(None, 0, 0))(params, X, y)
    return torch.cat([g.reshape(X.shape[0], -1) for g in G.values()], 1)


def fgsm_pgd(module, kind, X, y, eps, steps):
    alpha = eps if steps == 1 else 2.5 * eps / steps
    x = X.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        (g,) = torch.autograd.grad(ref_loss(kind, module(x), y).sum(), x)
        x = torch.clamp(x.detach() + alpha * g.sign(), X - eps, X + eps)
    return x


def ref_direction(module, kind, objective, Xv, yv, s=None, positive=1, names=None):
    params = params_of(module, names)

    def J(p):
        out = functional_call(module, p, (Xv,))
        if objective == "dp":
            pr = ref_proba(kind, out)[:, positive]
            return pr[s == 1].mean() - pr[s == 0].mean()
        return ref_loss(kind, out, yv).mean()

    v = flat(grad(J)(params))
    if objective == "dp" and J(params) < 0:  # absolute=True: sign frozen at theta
        v = -v
    return v


def auc_flipped(flipped, scores):
    return roc_auc_score(flipped, -np.asarray(scores))


@pytest.fixture(scope="module")
def tabular():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(70, 4)).astype("float32")
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=70) > 0).astype("int64")
    Xv = rng.normal(size=(30, 4)).astype("float32")
    yv = (Xv[:, 0] + 0.5 * Xv[:, 1] > 0).astype("int64")
    return X, y, Xv, yv


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 1, 6, 6)).astype("float32")
    y = (X[:, 0, :3].mean((1, 2)) > 0).astype("int64") + (X[:, 0, 3:].mean((1, 2)) > 0.2)
    Xv = rng.normal(size=(20, 1, 6, 6)).astype("float32")
    yv = rng.integers(0, 3, 20)
    return X, y.astype("int64"), Xv, yv


# ---------------------------------------------------------------- exactness
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("objective", ["utility", "dp", "fgsm", "pgd"])
def test_jvp_scores_equal_vmap_grad_inner_products(arch, objective, tabular, images):
    X, y, Xv, yv = tabular if arch == "mlp" else images
    torch.manual_seed(0)
    module = mlp(4, 2) if arch == "mlp" else cnn(3)
    train(module, nn.CrossEntropyLoss(), torch.tensor(X), torch.tensor(y), epochs=15)
    Xt, yt, Xvt, yvt = map(torch.tensor, (X, y, Xv, yv))
    flat_x = Xv.reshape(len(Xv), -1)
    s = (flat_x[:, 0] > 0).astype(int)
    kw = {}
    if objective == "utility":
        obj, v = Utility(), ref_direction(module, "ce", "utility", Xvt, yvt)
    elif objective == "dp":
        positive = 1
        obj = DemographicParity(positive_class=positive)
        kw["sensitive_features_val"] = s
        v = ref_direction(module, "ce", "dp", Xvt, yvt, torch.tensor(s), positive)
    else:
        steps = 1 if objective == "fgsm" else 4
        obj = AdversarialRobustness(epsilon=0.1, steps=steps)
        Xa = fgsm_pgd(module, "ce", Xvt, yvt, 0.1, steps)
        assert float((Xa - Xvt).abs().max()) <= 0.1 + 1e-6
        v = ref_direction(module, "ce", "utility", Xa, yvt)
    expected = (per_sample_grads(module, "ce", Xt, yt) @ v).numpy()
    got = influence_scores((module, nn.CrossEntropyLoss()), X, y, Xv, yv, objective=obj,
                           batch_size=16, **kw)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale)


def test_adversarial_attack_raises_the_validation_loss(tabular):
    X, y, Xv, yv = tabular
    module = train(mlp(4, 2), nn.CrossEntropyLoss(), torch.tensor(X), torch.tensor(y))
    a = make_adapter((module, nn.CrossEntropyLoss()))
    a.training_data(X, y)
    clean = Utility().terms(a, Xv, yv)
    for steps in (1, 5):
        attacked = AdversarialRobustness(epsilon=0.2, steps=steps).terms(a, Xv, yv)
        assert a.objective_value(attacked) > a.objective_value(clean)
    with pytest.raises(ValueError, match="epsilon"):
        AdversarialRobustness(epsilon=-1).terms(a, Xv, yv)
    with pytest.raises(ValueError, match="steps"):
        AdversarialRobustness(steps=0).terms(a, Xv, yv)


# ---------------------------------------------------------------- skorch criteria
def _skorch_nets(X, y):
    common = dict(max_epochs=15, lr=0.05, train_split=None, verbose=0, batch_size=32,
                  optimizer=torch.optim.Adam)
    torch.manual_seed(0)
    nll = NeuralNetClassifier(nn.Sequential(mlp(4, 2), nn.Softmax(-1)), **common).fit(X, y)
    ce = NeuralNetClassifier(mlp(4, 2), criterion=nn.CrossEntropyLoss, **common).fit(X, y)
    bce = NeuralNetBinaryClassifier(mlp(4, 1), **common).fit(X, y.astype("float32"))
    return {"nll_proba": nll, "ce": ce, "bce": bce}


@pytest.fixture(scope="module")
def skorch_nets(tabular):
    X, y, _, _ = tabular
    return _skorch_nets(X, y)


@pytest.mark.parametrize("kind", ["nll_proba", "ce", "bce"])
def test_skorch_loss_is_exactly_what_the_net_trained_on(kind, skorch_nets, tabular):
    X, y, Xv, yv = tabular
    net = skorch_nets[kind]
    yy = y.astype("float32") if kind == "bce" else y
    a = make_adapter(net)
    a.training_data(X, yy)
    # the mean loss skorch minimised, from skorch itself
    with torch.no_grad():
        trained_on = float(net.get_loss(net.infer(torch.tensor(X)), torch.tensor(yy)))
    assert a.objective_value(Utility().terms(a, X, yy)) == pytest.approx(trained_on, rel=1e-5)
    np.testing.assert_allclose(a.predict_proba(X), net.predict_proba(X), rtol=1e-5, atol=1e-6)
    # scores against per-sample gradients of the independent loss at the net's module
    module = net.module_
    Xt, yt = torch.tensor(X), torch.tensor(y)
    v = ref_direction(module, kind, "utility", torch.tensor(Xv), torch.tensor(yv))
    expected = (per_sample_grads(module, kind, Xt, yt) @ v).numpy()
    got = influence_scores(net, X, yy, Xv, yv, batch_size=25)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_skorch_weight_decay_is_read_from_the_optimizer(tabular):
    X, y, _, _ = tabular
    net = NeuralNetClassifier(mlp(4, 2), criterion=nn.CrossEntropyLoss, max_epochs=2,
                              train_split=None, verbose=0, optimizer=torch.optim.SGD,
                              optimizer__weight_decay=0.01,
                              optimizer__param_groups=[("4.*", {"weight_decay": 0.0})])
    net.fit(X, y)
    a = make_adapter(net)
    decay = {n: [round(x, 6) for x in a.weight_decay[o:o + k].unique().tolist()]
             for n, o, k in zip(a.space.names, np.cumsum([0] + a.space.sizes), a.space.sizes)}
    assert decay == {"0.weight": [0.01], "0.bias": [0.01], "2.weight": [0.01],
                     "2.bias": [0.01], "4.weight": [0.0], "4.bias": [0.0]}
    plain = make_adapter(_skorch_nets(X, y)["ce"])
    assert float(plain.weight_decay.abs().max()) == 0.0  # Adam without decay: damping only
    # the Hessian is the data Hessian plus exactly the decay diagonal
    t = a.training_data(X, y)
    H = a.hessian(t)
    H0 = make_adapter(net, weight_decay=0.0).hessian(t)
    np.testing.assert_allclose(np.diag(H - H0), a.weight_decay.numpy(), atol=1e-6)


# ---------------------------------------------------------------- Hessians
def test_explicit_hessian_and_hvp_match_torch_func_hessian(tabular):
    X, y, _, _ = tabular
    module = train(mlp(4, 2, hidden=6), nn.CrossEntropyLoss(), torch.tensor(X), torch.tensor(y))
    w = np.linspace(0.5, 2.0, len(X))
    a = make_adapter((module, nn.CrossEntropyLoss()), weight_decay=0.003)
    t = a.training_data(X, y, sample_weight=w)
    params = params_of(module)
    names, shapes = list(params), [p.shape for p in params.values()]
    sizes = [p.numel() for p in params.values()]
    wt = torch.tensor(w / w.mean(), dtype=torch.float32)

    def L(th):
        p = {n: q.view(s) for n, q, s in zip(names, torch.split(th, sizes), shapes)}
        out = functional_call(module, p, (torch.tensor(X),))
        return (wt * ref_loss("ce", out, torch.tensor(y))).mean() + 0.0015 * (th ** 2).sum()

    H_ref = torch.func.hessian(L)(flat(params)).double().numpy()
    H = a.hessian(t, batch_size=16)
    np.testing.assert_allclose(H, H_ref, atol=1e-5 * np.abs(H_ref).max())
    vec = torch.randn(a.n_params)
    np.testing.assert_allclose(a.hvp(t, vec, batch_size=9).numpy(), H_ref @ vec.double().numpy(),
                               rtol=1e-4, atol=1e-5)
    assert a.null_directions().shape == (a.n_params, 0)


@pytest.fixture(scope="module")
def convex_pair():
    """A LogisticRegression and the same model as a one-linear-layer skorch net."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3)).astype("float32")
    y = (X @ [1.0, -2.0, 0.5] + rng.normal(size=120) > 0).astype("int64")
    lr = LogisticRegression(C=0.5).fit(X.astype("float64"), y)
    lam = 1.0 / (lr.C * len(X))  # sklearn: C * sum(loss) + 0.5 ||w||^2 -> mean form
    net = NeuralNetBinaryClassifier(nn.Linear(3, 1), max_epochs=1, train_split=None, verbose=0,
                                    optimizer=torch.optim.SGD, optimizer__weight_decay=lam,
                                    optimizer__param_groups=[("bias", {"weight_decay": 0.0})])
    net.initialize()
    with torch.no_grad():
        net.module_.weight.copy_(torch.tensor(lr.coef_))
        net.module_.bias.copy_(torch.tensor(lr.intercept_))
    Xv = rng.normal(size=(40, 3)).astype("float32")
    yv = (Xv @ [1.0, -2.0, 0.5] > 0).astype("int64")
    return lr, net, X, y, Xv, yv, lam


@pytest.mark.parametrize("objective", ["utility", "dp"])
def test_exact_hessian_one_linear_layer_matches_linear_adapter(convex_pair, objective):
    lr, net, X, y, Xv, yv, lam = convex_pair
    kw = {"objective": Utility()}
    if objective == "dp":
        kw = {"objective": DemographicParity(), "sensitive_features_val": Xv[:, 0] > 0}
    ref = influence_scores(lr, X.astype("float64"), y, Xv.astype("float64"), yv,
                           method="exact_hessian", return_result=True, **kw)
    got = influence_scores(net, X, y.astype("float32"), Xv, yv, method="exact_hessian",
                           return_result=True, **kw)
    assert got.damping == 0.0 and ref.damping == 0.0
    np.testing.assert_allclose(got.scores, ref.scores, rtol=2e-3,
                               atol=2e-4 * np.abs(ref.scores).max())
    # the same model as a (module, loss) pair with the decay given explicitly; CG solver
    pair = (net.module_, nn.BCEWithLogitsLoss())
    cg = influence_scores(pair, X, y, Xv, yv, method=ExactHessian(solver="cg", tol=1e-6),
                          weight_decay={"weight": lam}, **kw)
    np.testing.assert_allclose(cg, ref.scores, rtol=2e-3, atol=2e-4 * np.abs(ref.scores).max())


def test_exact_hessian_auto_damping_reported_for_nonconvex_net(tabular):
    X, y, Xv, yv = tabular
    module = train(mlp(4, 2, seed=TRAIN_SEED), nn.CrossEntropyLoss(), torch.tensor(X),
                   torch.tensor(y), seed=TRAIN_SEED)
    pair = (module, nn.CrossEntropyLoss())
    res = influence_scores(pair, X, y, Xv, yv, method="exact_hessian", return_result=True)
    a = make_adapter(pair)
    lam_min = np.linalg.eigvalsh(a.hessian(a.training_data(X, y)))[0]
    record_statistic("auto_damping.lam_min", lam_min)
    # measured over 10 training seeds x 1 and 2 threads: -0.092 to -0.027, always indefinite
    assert lam_min < 0  # the trained MLP's Hessian is indefinite
    # shifted past the most negative eigenvalue by the solvers' common rule, not just to it
    assert res.damping > -lam_min * 1.05
    assert np.all(np.isfinite(res.scores))
    # one method, one answer: CG takes the same damping and ranks the rows the same
    cg = influence_scores(pair, X, y, Xv, yv, method=ExactHessian(solver="cg", tol=1e-6),
                          return_result=True)
    # the Lanczos runs differ only in the HVP's float32 rounding (measured: 4e-4 apart)
    assert cg.damping == pytest.approx(res.damping, rel=1e-2)
    rho = spearmanr(res.scores, cg.scores)[0]
    record_statistic("auto_damping.cholesky_cg_spearman", rho)
    assert rho >= 0.99


def test_cg_and_lissa_run_on_torch_tensors(tabular):
    X, y, Xv, yv = tabular
    module = train(mlp(4, 2, hidden=5, seed=TRAIN_SEED), nn.CrossEntropyLoss(),
                   torch.tensor(X), torch.tensor(y), seed=TRAIN_SEED)
    pair = (module, nn.CrossEntropyLoss())
    chol = influence_scores(pair, X, y, Xv, yv, method=ExactHessian(damping=0.5))
    cg = influence_scores(pair, X, y, Xv, yv, method=ExactHessian(damping=0.5, solver="cg",
                                                                  tol=1e-6))
    np.testing.assert_allclose(cg, chol, rtol=1e-3, atol=1e-4 * np.abs(chol).max())
    lissa = influence_scores(pair, X, y, Xv, yv, random_state=0,
                             method=ExactHessian(damping=0.5, solver="lissa", tol=1e-7,
                                                 max_iter=5000))
    record_statistic("lissa_vs_cholesky.pearson", np.corrcoef(lissa, chol)[0, 1])
    # a converged solver, not a training statistic: 1.0000 in all 20 measured runs
    assert np.corrcoef(lissa, chol)[0, 1] > 0.999


@pytest.mark.parametrize("sampler", ["random", "feature", "logit"])
def test_sampled_hessian_samplers_on_a_net(sampler, tabular):
    X, y, Xv, yv = tabular
    module = train(mlp(4, 2, hidden=5, seed=TRAIN_SEED), nn.CrossEntropyLoss(),
                   torch.tensor(X), torch.tensor(y), seed=TRAIN_SEED)
    pair = (module, nn.CrossEntropyLoss())
    res = influence_scores(pair, X, y, Xv, yv, random_state=0, return_result=True,
                           method=SampledHessian(sampler=sampler, fraction=0.5, damping=0.5))
    assert np.all(np.isfinite(res.scores)) and len(res.extras["subset_indices"]) == 35
    full = influence_scores(pair, X, y, Xv, yv, method=ExactHessian(damping=0.5))
    record_statistic(f"sampled_hessian_vs_exact.{sampler}", np.corrcoef(res.scores, full)[0, 1])
    # measured over 10 training seeds x 1 and 2 threads, min / mean: random 0.896 / 0.940,
    # feature 0.782 / 0.920, logit 0.831 / 0.890
    assert np.corrcoef(res.scores, full)[0, 1] > 0.7


def test_random_sampler_with_every_row_is_exact_hessian(tabular):
    X, y, Xv, yv = tabular
    module = train(mlp(4, 2, hidden=5), nn.CrossEntropyLoss(), torch.tensor(X), torch.tensor(y))
    pair = (module, nn.CrossEntropyLoss())
    full = influence_scores(pair, X, y, Xv, yv, method=ExactHessian(damping=0.1))
    all_rows = influence_scores(pair, X, y, Xv, yv, random_state=0,
                                method=SampledHessian(sampler="random", fraction=1.0,
                                                      damping=0.1))
    np.testing.assert_allclose(all_rows, full, rtol=1e-4, atol=1e-5 * np.abs(full).max())


def test_sampler_inputs_are_penultimate_embeddings_and_logit_curvature(tabular):
    X, y, _, _ = tabular
    module = train(mlp(4, 2, hidden=5), nn.CrossEntropyLoss(), torch.tensor(X), torch.tensor(y))
    a = make_adapter((module, nn.CrossEntropyLoss()))
    t = a.training_data(X, y)
    with torch.no_grad():
        emb = module[:-1](torch.tensor(X)).double().numpy()
        p = torch.softmax(module(torch.tensor(X)), -1).double().numpy()
    np.testing.assert_allclose(a.embedding(X), emb, rtol=1e-6)
    S = np.einsum("nk,kl->nkl", p, np.eye(2)) - p[:, :, None] * p[:, None, :]
    expected = np.linalg.norm(S, axis=(1, 2)) * ((emb ** 2).sum(1) + 1)
    np.testing.assert_allclose(a.hessian_norms(t), expected, rtol=1e-5)


# ---------------------------------------------------------------- half-moons
def _moons_mlp():
    return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))


@pytest.fixture(scope="module")
def moons_net():
    """Half-moons of the IP Ensemble paper: 250 train, 20 flipped, MLP 2-32-32-32-1 (Adam)."""
    d = make_flipped_moons()
    X, y = d.X_train.astype("float32"), d.y_train.astype("float32")
    torch.manual_seed(TRAIN_SEED)
    module = _moons_mlp()
    crit = nn.BCEWithLogitsLoss()
    train(module, lambda out, t: crit(out.reshape(-1), t), torch.tensor(X), torch.tensor(y),
          epochs=300, lr=0.01, seed=TRAIN_SEED)
    return module, X, y, d


def test_half_moons_flip_detection(moons_net):
    module, X, y, d = moons_net
    pair = (module, nn.BCEWithLogitsLoss())
    aucs = {}
    for name, method in [("ip", IP()), ("ip_ensemble", IPEnsemble()),
                         ("ip_ensemble_gaussian", IPEnsemble(perturbation="gaussian")),
                         ("exact_hessian", ExactHessian())]:
        s = influence_scores(pair, X, y, d.X_test, d.y_test, method=method, random_state=0)
        aucs[name] = auc_flipped(d.flipped, s)
        record_statistic(f"half_moons_auc.{name}", aucs[name])
    print("half-moons flip-detection AUC:", {k: round(v, 3) for k, v in aucs.items()})
    # Bars measured over 10 training seeds x OMP_NUM_THREADS 1 and 2
    # (benchmarks/quality/bench_test_margins.py, RESULTS_test_margins.md), min / mean:
    # IP 0.994 / 0.999; IPEnsemble dropout 0.615 / 0.882; gaussian 0.955 / 0.995;
    # Remeasured with the solvers' common damping (1.1 x the Lanczos estimate of the most
    # negative eigenvalue, where it used to just clear it), min / mean: IP 0.915 / 0.986;
    # dropout 0.566 / 0.869; gaussian 0.909 / 0.986; ExactHessian 0.718 / 0.887 (it was
    # 0.401 / 0.530 with the old damping: chance).
    assert aucs["ip"] >= 0.9
    assert aucs["ip_ensemble"] >= 0.55
    assert aucs["ip_ensemble_gaussian"] >= 0.85
    assert aucs["exact_hessian"] >= 0.65


# ---------------------------------------------------------------- members
def test_ensemble_members_scored_at_their_own_parameters(tabular):
    X, y, Xv, yv = tabular
    module = train(mlp(4, 2), nn.CrossEntropyLoss(), torch.tensor(X), torch.tensor(y))
    pair = (module, nn.CrossEntropyLoss())
    res = influence_scores(pair, X, y, Xv, yv, method=IPEnsemble(n_members=3, dropout=0.2),
                           random_state=4, return_result=True, batch_size=32)
    ip = influence_scores(pair, X, y, Xv, yv)
    assert res.member_scores.shape == (len(X), 3)
    np.testing.assert_allclose(res.member_scores[:, 0], ip, rtol=1e-6)
    np.testing.assert_allclose(res.scores, res.member_scores.mean(1), rtol=1e-6)
    # member 1 against the vmap(grad) reference at the same perturbed parameters
    a = make_adapter(pair)
    rng = np.random.default_rng(np.random.RandomState(4).randint(2**31 - 1))
    theta1 = a.perturbed_parameters("dropout", 0.2, rng)
    m1 = copy.deepcopy(module)
    torch.nn.utils.vector_to_parameters(theta1, m1.parameters())
    v = ref_direction(m1, "ce", "utility", torch.tensor(Xv), torch.tensor(yv))
    expected = (per_sample_grads(m1, "ce", torch.tensor(X), torch.tensor(y)) @ v).numpy()
    np.testing.assert_allclose(res.member_scores[:, 1], expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())


def test_activation_dropout_members(tabular):
    X, y, Xv, yv = tabular
    module = train(mlp(4, 2, dropout=0.3), nn.CrossEntropyLoss(), torch.tensor(X),
                   torch.tensor(y))
    pair = (module, nn.CrossEntropyLoss())
    method = IPEnsemble(n_members=4, perturbation="activation")
    r1 = influence_scores(pair, X, y, Xv, yv, method=method, random_state=0, return_result=True)
    r2 = influence_scores(pair, X, y, Xv, yv, method=method, random_state=0, return_result=True)
    np.testing.assert_array_equal(r1.member_scores, r2.member_scores)  # fixed seed per member
    ip = influence_scores(pair, X, y, Xv, yv)
    np.testing.assert_allclose(r1.member_scores[:, 0], ip, rtol=1e-6)  # member 0: dropout off
    assert not np.allclose(r1.member_scores[:, 1], ip, rtol=1e-2)
    assert not np.allclose(r1.member_scores[:, 1], r1.member_scores[:, 2], rtol=1e-2)
    assert not module.training and not module[2].training
    no_dropout = (train(mlp(4, 2), nn.CrossEntropyLoss(), torch.tensor(X), torch.tensor(y)),
                  nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="dropout layers"):
        influence_scores(no_dropout, X, y, Xv, yv, method=method)


# ---------------------------------------------------------------- params
def test_last_layer_and_named_parameters(tabular):
    X, y, Xv, yv = tabular
    module = train(mlp(4, 2), nn.CrossEntropyLoss(), torch.tensor(X), torch.tensor(y))
    pair = (module, nn.CrossEntropyLoss())
    a = make_adapter(pair, params="last_layer")
    assert a.space.names == ["4.weight", "4.bias"] and a.n_params == 16 * 2 + 2
    names = ["4.weight", "4.bias"]
    v = ref_direction(module, "ce", "utility", torch.tensor(Xv), torch.tensor(yv), names=names)
    G = per_sample_grads(module, "ce", torch.tensor(X), torch.tensor(y), names=names)
    expected = (G @ v).detach().numpy()
    for params in ("last_layer", names, ["4.bias", "4.weight", "4.bias"]):
        got = influence_scores(pair, X, y, Xv, yv, params=params)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="not parameters"):
        make_adapter(pair, params=["nope"])
    with pytest.raises(ValueError, match="params="):
        make_adapter(pair, params="first_layer")


# ---------------------------------------------------------------- contracts
def test_scoring_never_mutates_the_callers_net(skorch_nets, tabular):
    X, y, Xv, yv = tabular
    net = skorch_nets["ce"]
    before = copy.deepcopy(net.module_.state_dict())
    modes = [m.training for m in net.module_.modules()]
    for method in ("ip", "ip_ensemble", "exact_hessian"):
        for objective in ("utility", AdversarialRobustness(steps=2)):
            influence_scores(net, X, y, Xv, yv, method=method, objective=objective)
    for k, v in net.module_.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert [m.training for m in net.module_.modules()] == modes
    assert all(p.requires_grad for p in net.module_.parameters())
    pickle.dumps(net)  # still a plain picklable net


def test_inputs_accepted_and_bad_inputs_rejected(tabular):
    X, y, Xv, yv = tabular
    module = train(mlp(4, 2), nn.CrossEntropyLoss(), torch.tensor(X), torch.tensor(y))
    pair = (module, nn.CrossEntropyLoss())
    ref = influence_scores(pair, X, y, Xv, yv)
    pd = pytest.importorskip("pandas")
    np.testing.assert_allclose(
        influence_scores(pair, pd.DataFrame(X.astype("float64")), list(y), torch.tensor(Xv),
                         torch.tensor(yv)), ref, rtol=1e-6)
    with pytest.raises(ValueError, match="loss is required"):
        influence_scores(module, X, y, Xv, yv)
    with pytest.raises(TypeError, match="Unsupported criterion L1Loss"):
        influence_scores((module, nn.L1Loss()), X, y, Xv, yv)
    with pytest.raises(ValueError, match=r"MSELoss model must output shape \(n,\) or \(n, 1\)"):
        influence_scores((module, nn.MSELoss()), X, y, Xv, yv)  # a regressor has one output
    with pytest.raises(TypeError, match="Unknown option"):
        influence_scores(pair, X, y, Xv, yv, parms="all")
    with pytest.raises(ValueError, match="X_val has rows of shape"):
        influence_scores(pair, X, y, Xv[:, :3], yv)
    with pytest.raises(ValueError, match="y_val contains labels \\[7\\]"):
        influence_scores(pair, X, y, Xv, np.full(len(Xv), 7))
    with pytest.raises(ValueError, match="NaN"):
        influence_scores(pair, np.where(X > 2, np.nan, X), y, Xv, yv)
    with pytest.raises(ValueError, match="not fitted"):
        influence_scores(NeuralNetClassifier(mlp(4, 2)), X, y, Xv, yv)
    with pytest.raises(TypeError, match="needs a torch model"):
        influence_scores(LogisticRegression().fit(X, y), X, y, Xv, yv,
                         method=IPEnsemble(members="checkpoints"))


def test_cuda_requested_without_cuda_is_a_clear_error(tabular):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y, Xv, yv = tabular
    with pytest.raises(ValueError, match="CUDA is not available"):
        influence_scores((mlp(4, 2), nn.CrossEntropyLoss()), X, y, Xv, yv, device="cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["ip", "ip_ensemble", IPEnsemble(perturbation="activation")])
def test_cuda_scores_match_cpu(method, tabular):
    X, y, Xv, yv = tabular
    module = train(mlp(4, 2, dropout=0.2), nn.CrossEntropyLoss(), torch.tensor(X),
                   torch.tensor(y))
    pair = (module, nn.CrossEntropyLoss())
    cpu = influence_scores(pair, X, y, Xv, yv, method=method, random_state=0)
    gpu = influence_scores(pair, X, y, Xv, yv, method=method, random_state=0, device="cuda")
    assert isinstance(make_adapter(pair, device="cuda"), TorchModelAdapter)
    if method == "ip":
        np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-5 * np.abs(cpu).max())
    else:
        assert np.all(np.isfinite(gpu))


def test_influence_trimmer_around_a_skorch_net_in_a_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from skinfluence import InfluenceTrimmer
    from skinfluence.datasets import flip_labels

    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 4)).astype("float32")
    y = (X[:, 0] + X[:, 1] > 0).astype("int64")
    y_noisy, flipped = flip_labels(y, 0.1, random_state=0)
    net = NeuralNetClassifier(mlp(4, 2, seed=TRAIN_SEED), criterion=nn.CrossEntropyLoss,
                              max_epochs=30, lr=0.1, batch_size=64, train_split=None, verbose=0)
    pipe = make_pipeline(StandardScaler(), FunctionTransformer(lambda Z: Z.astype("float32")),
                         InfluenceTrimmer(net, fraction=0.1, cv=3, random_state=0))
    pipe.fit(X, y_noisy)
    dropped = ~pipe[-1].support_
    assert dropped.sum() == 24
    record_statistic("skorch_pipeline.flipped_share_of_dropped", flipped[dropped].mean())
    # measured over 10 training seeds x 1 and 2 threads: 0.625 to 0.750 (base rate 0.1)
    assert flipped[dropped].mean() > 3 * flipped.mean()  # mostly the flipped labels


@pytest.mark.parametrize("method", ["ip", "ip_ensemble"])
def test_the_result_reports_the_objective_at_the_fitted_parameters(method):
    """The value the gradient pass sums (no second forward) is the validation loss by hand,
    also after an ensemble's members moved the parameters."""
    rng = np.random.default_rng(3)
    X, Xv = rng.normal(size=(90, 4)).astype("float32"), rng.normal(size=(40, 4)).astype("float32")
    y, yv = (X[:, 0] > 0).astype("int64") + (X[:, 1] > 1), (Xv[:, 0] > 0).astype("int64")
    net = mlp(4, 3, seed=2).eval()
    res = influence_scores((net, nn.CrossEntropyLoss()), X, y, Xv, yv, method=method,
                           return_result=True, random_state=0)
    with torch.no_grad():
        expected = F.cross_entropy(net(torch.tensor(Xv)), torch.tensor(yv)).item()
    assert res.objective_value == pytest.approx(expected, rel=1e-5)


class _LastStep(nn.Module):
    """An LSTM over 5 steps, then a Linear head on its last output."""

    def __init__(self, cell=nn.LSTM):
        super().__init__()
        self.rnn = cell(3, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def _recurrent_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 5, 3)).astype("float32")
    return X, (X[:, -1, 0] > 0).astype("int64")


def _row_grads(net, X, y, params):
    """Each row's loss gradient in ``params`` (autograd, one row at a time)."""
    rows = []
    for i in range(len(y)):
        net.zero_grad()
        F.cross_entropy(net(torch.tensor(X[i:i + 1])), torch.tensor(y[i:i + 1])).backward()
        rows.append(torch.cat([p.grad.ravel() for p in params]).numpy().copy())
    return np.stack(rows)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(),
                    reason="the LSTM without a forward derivative is oneDNN's CPU kernel")
def test_an_lstm_without_a_forward_derivative_is_named_with_the_way_round():
    """torch's oneDNN LSTM kernel has no forward-mode derivative on the CPU: the error
    names the layer and params='last_layer', which then scores like G_i . mean G_val of
    the head alone (built here with autograd)."""
    from skinfluence import influence_matrix

    X, y = _recurrent_data()
    torch.manual_seed(0)
    net = _LastStep(nn.LSTM)
    kw = dict(loss=nn.CrossEntropyLoss(), device="cpu")
    for call in (influence_scores, influence_matrix):
        with pytest.raises(NotImplementedError, match=r"LSTM \(rnn\).*params='last_layer'"):
            call(net, X, y, X[:4], y[:4], **kw)
    got = influence_scores(net, X, y, X[:4], y[:4], params="last_layer", **kw)
    G = _row_grads(net, X, y, [net.head.weight, net.head.bias])
    expected = G @ G[:4].mean(0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("cell", [nn.GRU, nn.RNN])
def test_gru_and_rnn_layers_are_scored_in_all_their_parameters(cell):
    """Also one direction per test row (torch.vmap has no batching rule for their
    kernels: rows and directions go one at a time)."""
    from skinfluence import influence_matrix

    X, y = _recurrent_data()
    torch.manual_seed(0)
    net = _LastStep(cell)
    got = influence_scores(net, X, y, X[:4], y[:4], loss=nn.CrossEntropyLoss())
    G = _row_grads(net, X, y, list(net.parameters()))
    expected = G @ G[:4].mean(0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    M = influence_matrix(net, X, y, X[:12], y[:12], loss=nn.CrossEntropyLoss())
    np.testing.assert_allclose(M, G[:12] @ G.T, rtol=1e-4, atol=1e-6 * np.abs(M).max())
