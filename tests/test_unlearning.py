"""unlearn: Newton and influence steps against independent references.

References: Hessians and gradients of the training objective by torch autograd
(written here from the formula), scikit-learn refits with zero weight on the
removed rows, and NewtonLOO's own leave-one-out step.
"""
import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import ExactHessian, IP, SampledHessian, Utility, unlearn
from skinfluence.methods._newton_loo import NewtonLOOPass
from skinfluence.models.linear import LinearModelAdapter
from tests._margins import TRAIN_SEED, record_statistic
from tests._reference import exact_logistic


def _problem(n_classes, n=120, d=4, seed=0):
    X, y = make_classification(n, d, n_informative=3, n_redundant=0, n_classes=n_classes,
                               n_clusters_per_class=1, flip_y=0.05, random_state=seed)
    return StandardScaler().fit_transform(X), y


def _theta(model):
    return np.hstack([model.coef_, model.intercept_[:, None]]).ravel() \
        if model.fit_intercept else model.coef_.ravel()


def _objective(model, X, y, weight):
    """theta -> sum_i weight_i * C * l_i + 0.5 ||W||^2, written from sklearn's docs (torch)."""
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    weight = torch.as_tensor(weight, dtype=torch.float64)
    K = model.coef_.shape[0]
    D = X.shape[1] + int(model.fit_intercept)

    def F(theta):
        M = theta.reshape(K, D)
        W = M[:, :X.shape[1]]
        f = X @ W.T + (M[:, -1] if model.fit_intercept else 0.0)
        if K == 1:
            losses = torch.nn.functional.binary_cross_entropy_with_logits(
                f[:, 0], y.double(), reduction="none")
        else:
            losses = torch.nn.functional.cross_entropy(f, y, reduction="none")
        return model.C * (weight * losses).sum() + 0.5 * (W ** 2).sum()
    return F


def _reference_newton_step(model, X, y, keep, damping=0.0):
    """-(hess F_rem + damping c_rem I)^+ grad F_rem at the fit (dense, sum form)."""
    theta = torch.as_tensor(_theta(model))
    F = _objective(model, X, y, keep.astype(float))
    g = torch.autograd.functional.jacobian(F, theta).numpy()
    H = torch.autograd.functional.hessian(F, theta).numpy()
    H += damping * model.C * keep.sum() * np.eye(len(g))
    return -np.linalg.lstsq(H, g, rcond=1e-10)[0]


def _project(model, v):
    """Drop the component along the multinomial's flat directions (intercepts summed)."""
    K = model.coef_.shape[0]
    if K == 1 or not model.fit_intercept:
        return v
    n = np.zeros_like(v)
    n[np.arange(K) * (model.coef_.shape[1] + 1) + model.coef_.shape[1]] = 1 / np.sqrt(K)
    return v - n * (n @ v)


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_single_row_newton_step_is_the_leave_one_out_newton_step(n_classes):
    X, y = _problem(n_classes)
    model = exact_logistic(C=1.0).fit(X, y)
    a = LinearModelAdapter(model)
    train = a.training_data(X, y)
    loo = NewtonLOOPass(a, train, Utility().terms(a, X[:20], y[:20]), second_order=False)
    for i in (0, 17, 64):
        keep = np.ones(len(y), bool)
        keep[i] = False
        step = _theta(unlearn(model, X, y, [i])) - _theta(model)
        ref = _project(model, _reference_newton_step(model, X, y, keep))
        assert _rel(_project(model, step), ref) < 1e-7
        assert _rel(_project(model, step), _project(model, loo.dtheta(a, train, i))) < 1e-7


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_woodbury_and_direct_solves_match_the_dense_newton_step(n_classes, fit_intercept):
    X, y = _problem(n_classes, seed=1)
    model = exact_logistic(C=0.5, fit_intercept=fit_intercept).fit(X, y)
    remove = np.array([3, 9, 40, 41, 77])
    keep = np.ones(len(y), bool)
    keep[remove] = False
    ref = _project(model, _reference_newton_step(model, X, y, keep))
    steps = {}
    for solver in ("auto", "woodbury", "direct"):
        steps[solver] = _project(model, _theta(unlearn(model, X, y, remove, solver=solver))
                                 - _theta(model))
        assert _rel(steps[solver], ref) < 1e-7, solver


def test_damping_shrinks_the_newton_step_as_the_formula_says():
    X, y = _problem(3)
    model = exact_logistic(C=1.0).fit(X, y)
    keep = y != 2
    steps = []
    for damping in (0.0, 0.5):
        step = _theta(unlearn(model, X, y, ~keep, damping=damping, solver="direct")) \
            - _theta(model)
        ref = _reference_newton_step(model, X, y, keep, damping=damping)
        assert _rel(_project(model, step), _project(model, ref)) < 1e-7
        steps.append(np.linalg.norm(step))
    assert steps[1] < 0.5 * steps[0]


def test_influence_step_is_the_classical_formula():
    X, y = _problem(3)
    model = exact_logistic(C=2.0).fit(X, y)
    remove = np.arange(0, 120, 7)
    theta = torch.as_tensor(_theta(model))
    H = torch.autograd.functional.hessian(_objective(model, X, y, np.ones(len(y))), theta)
    removed_only = np.zeros(len(y))
    removed_only[remove] = 1.0
    g = torch.autograd.functional.jacobian(_objective(model, X, y, removed_only), theta)
    # theta + H_sum^-1 sum_S C g_i: the regulariser's own gradient cancels in the difference
    g = g.numpy() - _objective_reg_grad(model)
    ref = np.linalg.lstsq(H.numpy(), g, rcond=1e-10)[0]
    for method in ("influence", ExactHessian(), ExactHessian(solver="cg")):
        step = _theta(unlearn(model, X, y, remove, method=method)) - _theta(model)
        assert _rel(_project(model, step), _project(model, ref)) < 1e-6


def _objective_reg_grad(model):
    M = np.hstack([model.coef_, 0 * model.intercept_[:, None]])
    return M.ravel()


def test_n_steps_converge_to_retraining():
    X, y = _problem(3, n=150, seed=2)
    model = exact_logistic(C=1.0).fit(X, y)
    remove = np.random.default_rng(0).choice(len(y), 30, replace=False)
    keep = np.ones(len(y), bool)
    keep[remove] = False
    retrained = exact_logistic(C=1.0).fit(X, y, sample_weight=keep.astype(float))
    target = _project(model, _theta(retrained))
    errors = [_rel(_project(model, _theta(unlearn(model, X, y, remove, n_steps=k))), target)
              for k in (1, 2, 4)]
    assert errors[0] > 1e-4  # one step is not retraining ...
    assert errors[1] < errors[0] / 10 and errors[2] < 1e-9  # ... a few steps are


def test_n_steps_forget_a_class_as_retraining_does():
    X, y = _problem(3, n=400, seed=3)
    X, y, X_test = X[:300], y[:300], X[300:]
    model = LogisticRegression(C=1.0).fit(X, y)
    retrained = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(
        X, y, sample_weight=(y != 1).astype(float))
    agree, self_rate = [], []
    for k in (1, 4):
        forgot = unlearn(model, X, y, y == 1, n_steps=k)
        pred = forgot.predict(X_test)
        agree.append(np.mean(pred == retrained.predict(X_test)))
        self_rate.append(np.mean(pred == 1))
    assert self_rate[0] < np.mean(model.predict(X_test) == 1) / 2
    assert self_rate[1] == 0.0 and agree[1] == 1.0 and agree[0] > 0.95


@pytest.mark.parametrize("method", ["newton", "influence",
                                    SampledHessian(sampler="random", fraction=0.5)])
@pytest.mark.parametrize("remove", [[], np.zeros(120, bool)], ids=["indices", "mask"])
def test_removing_nothing_keeps_predictions_and_input_untouched(method, remove):
    X, y = _problem(3)
    model = LogisticRegression(C=1.0).fit(X, y)  # default tolerance: not an exact optimum
    coef = model.coef_.copy()
    X_copy = X.copy()
    new = unlearn(model, X, y, remove, method=method, random_state=0)
    assert new is not model and new.coef_ is not model.coef_
    np.testing.assert_array_equal(new.predict(X), model.predict(X))
    np.testing.assert_allclose(new.predict_proba(X), model.predict_proba(X), atol=1e-12)
    np.testing.assert_array_equal(model.coef_, coef)
    np.testing.assert_array_equal(X, X_copy)


def test_sample_weight_is_the_fitted_objective():
    X, y = _problem(2, n=100, seed=4)
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    model = exact_logistic(C=1.0).fit(X, y, sample_weight=w)
    remove = np.arange(10)
    keep = np.ones(len(y), bool)
    keep[remove] = False
    retrained = exact_logistic(C=1.0).fit(X, y, sample_weight=w * keep)
    weighted = unlearn(model, X, y, remove, sample_weight=w, n_steps=5)
    unweighted = unlearn(model, X, y, remove, sample_weight=None, n_steps=5)
    assert _rel(_theta(weighted), _theta(retrained)) < 1e-9
    assert _rel(_theta(unweighted), _theta(retrained)) > 1e-3


def test_sampled_hessian_seeds_and_batch_size():
    X, y = _problem(3)
    model = exact_logistic(C=1.0).fit(X, y)
    remove = y == 0
    runs = {}
    for sampler in ("random", "feature", "logit"):
        m = SampledHessian(sampler=sampler, fraction=0.3)
        a = _theta(unlearn(model, X, y, remove, method=m, random_state=1))
        b = _theta(unlearn(model, X, y, remove, method=m, random_state=1, batch_size=7))
        c = _theta(unlearn(model, X, y, remove, method=m, random_state=2))
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        assert _rel(a, c) > 1e-6
        runs[sampler] = a
    everything = SampledHessian(fraction=1.0, sampler="random")
    full = _theta(unlearn(model, X, y, remove, method=everything))
    exact = _theta(unlearn(model, X, y, remove, method="influence"))
    assert _rel(_project(model, full - _theta(model)), _project(model, exact - _theta(model))) \
        < 1e-8
    newton_small = _theta(unlearn(model, X, y, remove, batch_size=7, n_steps=2))
    newton = _theta(unlearn(model, X, y, remove, n_steps=2))
    np.testing.assert_allclose(newton_small, newton, rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------------- torch
def _one_layer_pair(model, X, y):
    """A torch Linear at the LogisticRegression's optimum of the same objective.

    sklearn's C sum l + 0.5 ||W||^2 is, divided by C n, the mean loss plus weight
    decay 1 / (C n) on the weights (the intercept unpenalised).
    """
    K, d = model.coef_.shape
    lin = torch.nn.Linear(d, K).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(model.coef_))
        lin.bias.copy_(torch.as_tensor(model.intercept_))
    return lin, {"weight": 1.0 / (model.C * len(y))}


@pytest.mark.parametrize("method", ["influence", SampledHessian(sampler="random", fraction=0.4),
                                    SampledHessian(sampler="logit", fraction=0.4),
                                    SampledHessian(sampler="feature", fraction=0.4)])
def test_torch_and_linear_influence_steps_agree_on_a_one_layer_net(method):
    X, y = _problem(3)
    model = exact_logistic(C=1.0).fit(X, y)
    lin, decay = _one_layer_pair(model, X, y)
    remove = np.flatnonzero(y == 1)[:15]
    new_lin = unlearn(lin, X, y, remove, method=method, random_state=3,
                      loss=torch.nn.CrossEntropyLoss(), weight_decay=decay)
    new_lr = unlearn(model, X, y, remove, method=method, random_state=3)
    torch_theta = np.hstack([new_lin.weight.detach().numpy(),
                             new_lin.bias.detach().numpy()[:, None]]).ravel()
    step_t, step_l = torch_theta - _theta(model), _theta(new_lr) - _theta(model)
    assert _rel(_project(model, step_t), _project(model, step_l)) < 1e-6
    assert np.allclose(lin.weight.detach().numpy(), model.coef_)  # input untouched


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_torch_newton_step_is_the_mean_form_newton_step(device):
    """A net's remaining objective is the mean loss over kept rows plus its weight decay."""
    X, y = _problem(3)
    model = exact_logistic(C=1.0).fit(X, y)
    lin, decay = _one_layer_pair(model, X, y)
    remove = np.arange(0, 120, 5)
    keep = np.ones(len(y), bool)
    keep[remove] = False
    new = unlearn((lin, torch.nn.CrossEntropyLoss()), X, y, remove, weight_decay=decay,
                  device=device)
    assert isinstance(new, tuple) and new[0] is not lin
    step = np.hstack([new[0].weight.detach().numpy(),
                      new[0].bias.detach().numpy()[:, None]]).ravel() - _theta(model)
    # independent: mean-form objective over the kept rows, C' = 1 / (wd * n_kept)
    theta = torch.as_tensor(_theta(model))
    mean_form = LogisticRegression(C=1.0 / (decay["weight"] * keep.sum()))
    mean_form.coef_, mean_form.intercept_ = model.coef_, model.intercept_
    F = _objective(mean_form, X, y, keep.astype(float))
    g = torch.autograd.functional.jacobian(F, theta).numpy()
    H = torch.autograd.functional.hessian(F, theta).numpy()
    ref = -np.linalg.lstsq(H, g, rcond=1e-10)[0]
    assert _rel(_project(model, step), _project(model, ref)) < 1e-6


def test_params_last_layer_moves_only_the_last_layer():
    X, y = _problem(3)
    torch.manual_seed(TRAIN_SEED)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    Xt = torch.as_tensor(X, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=0.05, weight_decay=1e-3)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), torch.as_tensor(y)).backward()
        opt.step()
    kw = dict(loss=torch.nn.CrossEntropyLoss(), weight_decay=1e-3)
    last = unlearn(net, X, y, y == 2, params="last_layer", n_steps=3, **kw)
    every = unlearn(net, X, y, y == 2, params="all", damping=0.1, **kw)
    assert torch.equal(last[0].weight, net[0].weight)
    assert not torch.equal(last[2].weight, net[2].weight)
    assert not torch.equal(every[0].weight, net[0].weight)
    with torch.no_grad():
        assert (last(Xt).argmax(1) == 2).sum() == 0  # class 2 forgotten
        kept = torch.as_tensor(y != 2)
        forgotten = (last(Xt).argmax(1) == 2).sum()
        agree = (last(Xt).argmax(1) == net(Xt).argmax(1))[kept].float().mean()
    record_statistic("unlearn_torch.forgotten_rows", forgotten)
    record_statistic("unlearn_torch.agreement", agree)
    assert agree > 0.9  # measured over 10 seeds x 1 and 2 threads: 0.962 to 1.000


def test_skorch_net_copy_with_updated_parameters():
    skorch = pytest.importorskip("skorch")
    X, y = _problem(3)
    X = X.astype(np.float32)
    torch.manual_seed(TRAIN_SEED)
    net = skorch.NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)),
        criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
        optimizer__weight_decay=1e-3, max_epochs=100, lr=0.05, train_split=None,
        verbose=0).fit(X, y)
    before = net.predict_proba(X)
    same = unlearn(net, X, y, [], params="last_layer")
    np.testing.assert_allclose(same.predict_proba(X), before, atol=1e-6)
    forgot = unlearn(net, X, y, y == 0, params="last_layer", n_steps=3)
    assert type(forgot) is type(net) and forgot.module_ is not net.module_
    record_statistic("unlearn_skorch.share_predicted_0_before", np.mean(net.predict(X) == 0))
    record_statistic("unlearn_skorch.share_predicted_0_after", np.mean(forgot.predict(X) == 0))
    record_statistic("unlearn_skorch.agreement",
                     np.mean(forgot.predict(X)[y != 0] == net.predict(X)[y != 0]))
    # measured over 10 seeds x 1 and 2 threads: share predicted 0 before 0.333-0.350 (a third
    # of the rows are class 0), after 0.000; agreement on the other classes 0.951-0.963
    assert np.mean(net.predict(X) == 0) > 0.25 and np.mean(forgot.predict(X) == 0) < 0.05
    assert np.mean(forgot.predict(X)[y != 0] == net.predict(X)[y != 0]) > 0.9
    np.testing.assert_array_equal(net.predict_proba(X), before)


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(remove=np.zeros(5, bool)), ValueError, "mask of length 5"),
    (dict(remove=[0, 500]), ValueError, "out of range"),
    (dict(remove=[-1]), ValueError, "out of range"),
    (dict(remove=[1.0, 2.0]), TypeError, "integer row indices"),
    (dict(remove=[3, 3]), ValueError, "repeat"),
    (dict(remove=np.zeros((2, 2), int)), ValueError, "1-D"),
    (dict(remove=None), ValueError, "required"),
    (dict(remove=np.ones(120, bool)), ValueError, "every training row"),
    (dict(remove="all_but_one"), ValueError, "only class"),
    (dict(remove=[0], n_steps=0), ValueError, "n_steps"),
    (dict(remove=[0], n_steps=2, method="influence"), ValueError, "method='newton'"),
    (dict(remove=[0], method="ip"), ValueError, "method='ip'"),
    (dict(remove=[0], method=IP()), TypeError, "ExactHessian"),
    (dict(remove=[0], solver="qr"), ValueError, "solver"),
    (dict(remove=[0], damping=-1.0), ValueError, "damping"),
    (dict(remove=[0], device="cuda"), ValueError, "device"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    X, y = _problem(3)
    model = LogisticRegression().fit(X, y)
    if isinstance(kwargs["remove"], str):
        kwargs["remove"] = y != 0
    with pytest.raises(error, match=match):
        unlearn(model, X, y, **kwargs)


def test_zero_weight_on_every_kept_row_is_an_error():
    X, y = _problem(2)
    w = np.zeros(len(y))
    w[:5] = 1.0
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="zero sample_weight"):
        unlearn(model, X, y, np.arange(5), sample_weight=w)


@pytest.mark.parametrize("damping", [np.nan, np.inf, -np.inf, -1e-3, True, "0.1"])
def test_damping_must_be_finite_and_non_negative(damping):
    X, y = _problem(2)
    model = LogisticRegression().fit(X, y)
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match="damping must be a finite number >= 0 or 'auto'"):
        unlearn(model, X, y, [0, 1], damping=damping)
    with pytest.raises(ValueError, match="damping"):  # the influence step's own damping too
        unlearn(model, X, y, [0, 1], method=ExactHessian(damping=damping))
    np.testing.assert_array_equal(coef, model.coef_)
