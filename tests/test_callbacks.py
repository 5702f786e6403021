"""Snapshots callback and checkpoint IPEnsemble."""
import copy
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from skinfluence import IP, IPEnsemble, influence_scores
from skinfluence.callbacks import Snapshot, Snapshots

skorch = pytest.importorskip("skorch")
from skorch import NeuralNetClassifier  # noqa: E402
from skorch.callbacks import Callback, LRScheduler  # noqa: E402


def _data(seed=0, n=60):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype("float32")
    y = (X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=n) > 0).astype("int64")
    return X, y


def _module(batchnorm=False):
    torch.manual_seed(0)
    layers = [nn.Linear(3, 8)] + ([nn.BatchNorm1d(8)] if batchnorm else []) + \
        [nn.Tanh(), nn.Linear(8, 2)]
    return nn.Sequential(*layers)


def _net(n_snapshots=5, max_epochs=10, callbacks=(), batchnorm=False, **kw):
    return NeuralNetClassifier(
        _module(batchnorm), criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD, lr=0.2,
        max_epochs=max_epochs, batch_size=20, train_split=None, verbose=0,
        callbacks=[*callbacks, ("snapshots", Snapshots(n_snapshots))], **kw)


def _cb(net):
    return dict(net.callbacks_)["snapshots"]


def _epochs(net):
    return [s.epoch for s in _cb(net).snapshots_]


# ---------------------------------------------------------------- the callback
def test_snapshots_evenly_spaced_on_cpu_with_the_learning_rate_in_force():
    X, y = _data()
    sched = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5)
    net = _net(n_snapshots=4, max_epochs=10, callbacks=[sched]).fit(X, y)
    snaps = _cb(net).snapshots_
    assert _epochs(net) == [3, 5, 8, 10]
    # StepLR(3, 0.5) from 0.2: epochs 1-3 at 0.2, 4-6 at 0.1, 7-9 at 0.05, 10 at 0.025
    assert [s.lr for s in snaps] == pytest.approx([0.2, 0.1, 0.05, 0.025])
    final = net.module_.state_dict()
    for k, v in snaps[-1].state.items():
        assert v.device.type == "cpu" and not v.requires_grad
        assert torch.equal(v, final[k])
        assert v.data_ptr() != final[k].data_ptr()  # a copy, not a view of the live module
    assert not torch.equal(snaps[0].state["0.weight"], final["0.weight"])
    assert _cb(net).nbytes_ == 4 * sum(t.numel() * 4 for t in final.values())


def test_snapshots_survive_pickling_and_clone_starts_fresh():
    X, y = _data()
    net = _net(n_snapshots=3).fit(X, y)
    loaded = pickle.loads(pickle.dumps(net))
    for a, b in zip(_cb(net).snapshots_, _cb(loaded).snapshots_):
        assert a.epoch == b.epoch and a.lr == b.lr
        assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    fresh = clone(net)
    assert not hasattr(dict(fresh.callbacks)["snapshots"], "snapshots_")
    fresh.fit(X, y)
    assert _epochs(fresh) == [4, 7, 10]
    net.fit(X, y)  # a new fit re-initialises: 3 snapshots, not 6
    assert _epochs(net) == [4, 7, 10]


def test_partial_fit_is_a_new_run():
    X, y = _data()
    net = _net(n_snapshots=2, max_epochs=4).fit(X, y)
    net.partial_fit(X, y)
    assert _epochs(net) == [6, 8]  # replaced by the second run's snapshots
    keep = _net(max_epochs=4).set_params(callbacks__snapshots__n_snapshots=2,
                                         callbacks__snapshots__keep_previous=True)
    keep.fit(X, y).partial_fit(X, y)
    assert _epochs(keep) == [2, 4, 6, 8]
    # a run longer than max_epochs still ends on the final parameters, n per run
    longer = _net(n_snapshots=2, max_epochs=4).fit(X, y)
    longer.partial_fit(X, y, epochs=7)
    assert _epochs(longer) == [6, 11]


class _StopAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_a_run_cut_short_ends_with_a_snapshot_of_the_final_parameters():
    X, y = _data()
    net = _net(n_snapshots=3, max_epochs=9, callbacks=[_StopAt(5)]).fit(X, y)
    assert _epochs(net) == [3, 5]
    final = net.module_.state_dict()
    assert all(torch.equal(v, final[k]) for k, v in _cb(net).snapshots_[-1].state.items())


class _FakeCuda(torch.Tensor):
    """A tensor that reports a CUDA device until moved with .to / .cpu."""

    moved = []

    @property
    def device(self):
        return torch.device("cuda", 0)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.to, torch.Tensor.cpu):
            cls.moved.append(func.__name__)
            return func(args[0].as_subclass(torch.Tensor), *args[1:], **kwargs)
        return super().__torch_function__(func, types, args, kwargs)


def test_snapshots_of_a_cuda_net_live_on_cpu():
    """Device-faking: the module's state reports cuda; every snapshot must be moved off it."""
    module = _module()
    fake_state = {k: v.detach().as_subclass(_FakeCuda) for k, v in module.state_dict().items()}
    assert fake_state["0.weight"].device.type == "cuda"
    assert type(fake_state["0.weight"].detach()) is _FakeCuda  # stays "on the GPU" unless moved
    net = SimpleNamespace(module_=SimpleNamespace(state_dict=lambda: fake_state), history=[],
                          max_epochs=4, optimizer_=SimpleNamespace(param_groups=[{"lr": 0.1}]))
    cb = Snapshots(n_snapshots=2).initialize()
    cb.on_train_begin(net)
    for _ in range(net.max_epochs):
        net.history.append({})
        cb.on_epoch_begin(net)
        cb.on_epoch_end(net)
    cb.on_train_end(net)
    assert [s.epoch for s in cb.snapshots_] == [2, 4]
    for snap in cb.snapshots_:
        for t in snap.state.values():
            assert type(t) is torch.Tensor and t.device.type == "cpu"
    assert len(_FakeCuda.moved) == 2 * len(fake_state)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_snapshots_of_a_cuda_trained_net_are_on_cpu():
    X, y = _data()
    net = _net(device="cuda").fit(X, y)
    assert str(next(net.module_.parameters()).device).startswith("cuda")
    assert all(t.device.type == "cpu" for s in _cb(net).snapshots_ for t in s.state.values())
    res = influence_scores(net, X, y, X, y, method=IPEnsemble(members="checkpoints"))
    assert np.all(np.isfinite(res))


def test_bad_n_snapshots():
    with pytest.raises(ValueError, match="n_snapshots"):
        Snapshots(n_snapshots=0).initialize()


# ---------------------------------------------------------------- checkpoint ensemble
def _ip_at(state, X, y, Xv, yv, batchnorm=False, **kw):
    module = _module(batchnorm)
    module.load_state_dict(state)
    return influence_scores((module.eval(), nn.CrossEntropyLoss()), X, y, Xv, yv, **kw)


def test_one_snapshot_of_the_final_parameters_equals_ip():
    X, y = _data()
    Xv, yv = _data(seed=1, n=30)
    net = _net(n_snapshots=1).fit(X, y)
    ens = influence_scores(net, X, y, Xv, yv, method=IPEnsemble(members="checkpoints"),
                           return_result=True)
    ip = influence_scores(net, X, y, Xv, yv, method=IP())
    assert ens.member_scores.shape == (len(X), 1)
    np.testing.assert_allclose(ens.scores, ip, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("lr_weighted", [False, True])
def test_k_snapshots_equal_the_mean_of_k_direct_ip_passes(lr_weighted):
    X, y = _data()
    Xv, yv = _data(seed=1, n=30)
    sched = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)
    net = _net(n_snapshots=4, max_epochs=8, callbacks=[sched], batchnorm=True).fit(X, y)
    snaps = _cb(net).snapshots_
    direct = np.column_stack([_ip_at(s.state, X, y, Xv, yv, batchnorm=True) for s in snaps])
    assert not np.allclose(direct[:, 0], direct[:, -1], rtol=0.1)  # the members differ
    res = influence_scores(net, X, y, Xv, yv, batch_size=16, return_result=True,
                           method=IPEnsemble(members="checkpoints", lr_weighted=lr_weighted))
    np.testing.assert_allclose(res.member_scores, direct, rtol=1e-5,
                               atol=1e-6 * np.abs(direct).max())
    w = np.array([s.lr for s in snaps]) if lr_weighted else np.ones(len(snaps))
    np.testing.assert_allclose(res.scores, direct @ (w / w.sum()), rtol=1e-5,
                               atol=1e-6 * np.abs(direct).max())


def test_checkpoints_list_on_a_bare_module_and_last_layer():
    X, y = _data()
    Xv, yv = _data(seed=1, n=30)
    net = _net(n_snapshots=3).fit(X, y)
    states = [s.state for s in _cb(net).snapshots_]
    module = copy.deepcopy(net.module_)
    pair = (module, nn.CrossEntropyLoss())
    for params in ("all", "last_layer"):
        got = influence_scores(pair, X, y, Xv, yv, params=params,
                               method=IPEnsemble(members="checkpoints", checkpoints=states))
        # the unchosen layers come from each snapshot too, not from the final model
        direct = np.mean([_ip_at(s, X, y, Xv, yv, params=params) for s in states], axis=0)
        np.testing.assert_allclose(got, direct, rtol=1e-5, atol=1e-6 * np.abs(direct).max())
    snaps = [Snapshot(1, 0.5, states[0]), Snapshot(2, 0.25, states[1])]
    weighted = influence_scores(pair, X, y, Xv, yv, method=IPEnsemble(
        members="checkpoints", checkpoints=snaps, lr_weighted=True))
    direct = (2 * _ip_at(states[0], X, y, Xv, yv) + _ip_at(states[1], X, y, Xv, yv)) / 3
    np.testing.assert_allclose(weighted, direct, rtol=1e-5, atol=1e-6 * np.abs(direct).max())


def test_checkpoint_errors_name_what_is_missing():
    X, y = _data()
    plain = NeuralNetClassifier(_module(), criterion=nn.CrossEntropyLoss, max_epochs=2,
                                train_split=None, verbose=0).fit(X, y)
    with pytest.raises(ValueError, match="Snapshots"):
        influence_scores(plain, X, y, X, y, method=IPEnsemble(members="checkpoints"))
    pair = (_module(), nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="lr_weighted=True needs the learning rate"):
        influence_scores(pair, X, y, X, y, method=IPEnsemble(
            members="checkpoints", checkpoints=[pair[0].state_dict()], lr_weighted=True))
    with pytest.raises(ValueError, match=r"checkpoints\[0\] lacks parameters"):
        influence_scores(pair, X, y, X, y, method=IPEnsemble(
            members="checkpoints", checkpoints=[{"0.weight": torch.zeros(8, 3)}]))
    with pytest.raises(ValueError, match="checkpoints is empty"):
        influence_scores(pair, X, y, X, y,
                         method=IPEnsemble(members="checkpoints", checkpoints=[]))
    with pytest.raises(ValueError, match="only with members='checkpoints'"):
        influence_scores(pair, X, y, X, y, method=IPEnsemble(checkpoints=[]))
    with pytest.raises(ValueError, match="'members' parameter of IPEnsemble"):
        influence_scores(pair, X, y, X, y, method=IPEnsemble(members="snapshots"))


def test_trimmer_with_checkpoint_ensemble_in_a_pipeline_and_grid_search():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from skinfluence import InfluenceTrimmer

    X, y = _data(n=90)
    net = _net(n_snapshots=3, max_epochs=6)
    trimmer = InfluenceTrimmer(net, method=IPEnsemble(members="checkpoints"), fraction=0.1,
                               cv=3, random_state=0)
    to32 = FunctionTransformer(lambda Z: np.asarray(Z, dtype=np.float32))
    pipe = make_pipeline(StandardScaler(), to32, trimmer).fit(X, y)
    fitted = pipe[-1]
    assert int((~fitted.support_).sum()) == 9
    assert _epochs(fitted.estimator_) == [2, 4, 6]  # the refit recorded its own snapshots
    assert not hasattr(dict(net.callbacks)["snapshots"], "snapshots_")  # caller's untouched
    grid = GridSearchCV(pipe, {"influencetrimmer__fraction": [0.05, 0.1]}, cv=2).fit(X, y)
    assert grid.best_params_["influencetrimmer__fraction"] in (0.05, 0.1)
