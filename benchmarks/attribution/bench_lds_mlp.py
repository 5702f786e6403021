"""LDS on a skorch MLP (digits): skinfluence's methods beside dattri's and captum's attributors.

One net (64 -> 32 ReLU -> 10, cross-entropy, SGD lr 0.05 with momentum 0,
weight decay 1e-3, 30 epochs, batch 64, float32) is trained on 1,000 digits
(the fixed split of ``bench_lds.py``); every attributor scores the same net
for the same 100 test rows, methods interleaved in one process, each timed
(wall clock, one thread). For each seed the LDS uses 50 random halves, one
refit of the same net (fresh initialisation) each, the same subsets for
every attributor.

Peers (installed beside skinfluence, never its dependencies): dattri's
``IFAttributorExplicit``, ``IFAttributorCG`` and ``TRAKAttributor`` (on the
epoch checkpoints), captum's ``TracInCP`` (the same checkpoints, with their
learning rate). Every attribution is used as "higher = more beneficial"
(each library's own convention: a training row whose gradient aligns with
the test row's lowers its loss).

Usage::

    OMP_NUM_THREADS=1 nice python benchmarks/attribution/bench_lds_mlp.py --seeds 0 1 2 3 4
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch
from torch import nn

from skorch import NeuralNetClassifier

from skinfluence import ExactHessian, IPEnsemble, SampledHessian, influence_matrix
from skinfluence.callbacks import Snapshots
from skinfluence.metrics import linear_datamodeling_score

from bench_lds import finish, split

EPOCHS, LR, DECAY, HIDDEN = 30, 0.05, 1e-3, 32


class MLP(nn.Module):
    def __init__(self, d_in=64, hidden=HIDDEN, n_classes=10):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_in, hidden), nn.Linear(hidden, n_classes)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def make_net(callbacks=()):
    return NeuralNetClassifier(
        MLP, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD, lr=LR,
        optimizer__weight_decay=DECAY, max_epochs=EPOCHS, batch_size=64, train_split=None,
        iterator_train__shuffle=True, callbacks=list(callbacks), verbose=0)


def ours(net, X, y, Xt, yt, seed):
    methods = {
        "skinfluence ip": "ip",
        "skinfluence ip_ensemble(5)": IPEnsemble(n_members=5),
        "skinfluence ip_ensemble(checkpoints)": IPEnsemble(members="checkpoints",
                                                           lr_weighted=True),
        "skinfluence exact_hessian": "exact_hessian",
        "skinfluence exact_hessian(damping=0.01)": ExactHessian(damping=0.01),
        "skinfluence exact_hessian(damping=0.1)": ExactHessian(damping=0.1),
        "skinfluence sampled_hessian": SampledHessian(),
    }
    return {k: (lambda m=m: influence_matrix(net, X, y, Xt, yt, method=m, random_state=seed))
            for k, m in methods.items()}


def peers(net, X, y, Xt, yt, ckpt_paths):
    """Callables returning (n_test, n_train) matrices; missing libraries are skipped."""
    out = {}
    model = net.module_
    train = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    test = torch.utils.data.TensorDataset(torch.from_numpy(Xt), torch.from_numpy(yt))
    loader = (lambda d: torch.utils.data.DataLoader(d, batch_size=100, shuffle=False))
    try:
        from dattri.algorithm.influence_function import IFAttributorCG, IFAttributorExplicit
        from dattri.algorithm.trak import TRAKAttributor
        from dattri.task import AttributionTask
    except ImportError as exc:
        print("dattri not available:", exc)
    else:
        def logp(params, data):
            """Log-probability of the label of one row (dattri passes it with or without
            its batch dimension, depending on the attributor)."""
            x, t = data
            x, t = (x, t) if x.ndim == 2 else (x.unsqueeze(0), t.unsqueeze(0))
            yhat = torch.func.functional_call(model, params, x)
            return -nn.functional.cross_entropy(yhat, t.long())

        def f(params, data):
            return -logp(params, data)

        def margin(params, data):  # TRAK's target: log p / (1 - p) of the label
            lp = logp(params, data)
            return lp - torch.log(1 - torch.exp(lp))

        def correct_p(params, data):
            return torch.exp(logp(params, data))

        final = {k: v.detach().clone() for k, v in model.state_dict().items()}
        states = [torch.load(p) for p in ckpt_paths]

        def dattri_if(cls, **kw):
            def run():
                task = AttributionTask(loss_func=f, model=model, checkpoints=final)
                att = cls(task=task, device="cpu", **kw)
                att.cache(loader(train))
                return att.attribute(loader(train), loader(test)).T.detach().numpy()
            return run

        def trak(ckpts):
            def run():
                task = AttributionTask(loss_func=margin, model=model, checkpoints=ckpts)
                att = TRAKAttributor(task=task, correct_probability_func=correct_p,
                                     device="cpu", projector_kwargs={"device": "cpu"})
                att.cache(loader(train))
                return att.attribute(loader(test)).T.detach().numpy()
            return run

        for reg in (1e-3, 1e-2):
            explicit = dattri_if(IFAttributorExplicit, regularization=reg)
            out[f"dattri IF explicit (reg {reg:g})"] = explicit
        out["dattri IF CG (reg 0.01, 10 it)"] = dattri_if(IFAttributorCG, regularization=1e-2)
        out["dattri TRAK (final model)"] = trak(final)
        out[f"dattri TRAK ({len(states)} checkpoints)"] = trak(states)
    try:
        from captum.influence import TracInCP
    except ImportError as exc:
        print("captum not available:", exc)
    else:
        def load(m, path):
            m.load_state_dict(torch.load(path))
            return LR

        def tracin():
            tr = TracInCP(model, train, ckpt_paths, checkpoints_load_func=load,
                          loss_fn=nn.CrossEntropyLoss(reduction="none"), batch_size=100,
                          sample_wise_grads_per_batch=False)
            scores = tr.influence((torch.from_numpy(Xt), torch.from_numpy(yt))).detach().numpy()
            model.load_state_dict(final_state)  # TracInCP leaves the last checkpoint loaded
            return scores

        final_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        out[f"captum TracInCP ({len(ckpt_paths)} checkpoints)"] = tracin
    return out


def main(seeds, n_subsets, n_ckpts):
    X, y, Xt, yt = split("digits")
    X, Xt = X.astype(np.float32), Xt.astype(np.float32)
    y, yt = y.astype(np.int64), yt.astype(np.int64)
    torch.manual_seed(0)
    net = make_net([Snapshots()]).fit(X, y)
    snaps = net.callbacks[0].snapshots_
    keep = snaps[-n_ckpts:] if n_ckpts else snaps
    tmp = tempfile.mkdtemp()
    paths = []
    for k, s in enumerate(keep):
        paths.append(os.path.join(tmp, f"ckpt{k}.pt"))
        torch.save(s.state, paths[-1])
    rows = []
    for name, run in {**ours(net, X, y, Xt[:5], yt[:5], 0),
                      **peers(net, X, y, Xt[:5], yt[:5], paths)}.items():
        try:  # warm-up, untimed: torch's first forward / vmap / jvp calls cost seconds
            run()
        except Exception:
            pass
    for seed in seeds:
        runs = {**ours(net, X, y, Xt, yt, seed), **peers(net, X, y, Xt, yt, paths)}
        mats, secs = {}, {}
        for name, run in runs.items():  # interleaved
            start = time.perf_counter()
            try:
                mats[name] = np.asarray(run(), dtype=np.float64)
            except Exception as exc:  # a peer that fails is reported, not hidden
                print(f"{name} failed: {type(exc).__name__}: {exc}", flush=True)
                continue
            secs[name] = time.perf_counter() - start
            print(f"seed {seed} {name}: {secs[name]:.2f} s", flush=True)
        torch.manual_seed(1000 + seed)  # the refits' initialisations
        lds = linear_datamodeling_score(make_net(), X, y, Xt, yt, mats, n_subsets=n_subsets,
                                        random_state=seed)
        for name in mats:
            rows.append(dict(seed=seed, method=name, lds=lds[name], seconds=secs[name]))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows):
    out = ["| attributor | LDS | time (s) |", "|---|---|---|"]
    for name in dict.fromkeys(r["method"] for r in rows):
        lds = np.array([r["lds"] for r in rows if r["method"] == name])
        t = np.array([r["seconds"] for r in rows if r["method"] == name])
        out.append(f"| {name} | {lds.mean():.3f} +- {lds.std():.3f} | "
                   f"{t.mean():.2f} +- {t.std():.2f} |")
    return "\n".join(out)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--n-subsets", type=int, default=50)
    p.add_argument("--checkpoints", type=int, default=5, help="last k epoch snapshots")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        rows = main(args.seeds, args.n_subsets, args.checkpoints)
    finish(rows, args.out, summary)
