"""IP scoring pass on an MLP: cost against a forward pass, captum and dattri, memory.

An MLP with about 100k parameters (d=100 -> 256 -> 256
-> 10, 94,218 parameters), n = 100,000 training rows, CrossEntropyLoss.

1. ``forward``: one eval-mode forward pass over the training rows, in the
   same ``batch_size`` chunks (no grad).
2. ``ip_pass``: the JVP scoring pass alone (adapter.score_pass), and
   ``influence_scores(method="ip")`` end to end (validation direction, input
   conversion, scoring pass).
3. Side by side, same model, data and validation set: captum ``TracInCP``
   with the final checkpoint only (learning rate 1, ``aggregate=True``: the
   sum over the validation set, its cheapest route to our quantity, and
   ``sample_wise_grads_per_batch=True``, its fast per-sample-gradient path)
   and dattri's Grad-Dot (``TracInAttributor`` with one checkpoint, weight 1,
   no random projection, no normalisation). Both build per-sample gradients.
   IP with the mean validation loss equals their scores averaged over the
   validation rows, so the scores are compared by Pearson correlation.
4. ``--memory``: peak resident memory added by the scoring pass, in a fresh
   process per (n, batch_size): bounded by batch_size, flat in n.

Run (2-core CPU machine, shared, so with nice)::

    nice .venv/bin/python benchmarks/models/bench_torch.py            # all of it
    nice .venv/bin/python benchmarks/models/bench_torch.py --baselines none --threads 1
    nice .venv/bin/python benchmarks/models/bench_torch.py --memory
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

from skinfluence import influence_scores
from skinfluence.models import make_adapter


def make_problem(n, d=100, hidden=256, k=10, n_val=256, seed=0, train=True):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n + n_val, d, generator=g)
    teacher = torch.randn(d, k, generator=g)
    y = (X @ teacher + 2.0 * torch.randn(n + n_val, k, generator=g)).argmax(1)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, k))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    for start in range(0, min(n, 20000) if train else 0, 256):  # short training: not random
        opt.zero_grad()
        crit(model(X[start:start + 256]), y[start:start + 256]).backward()
        opt.step()
    model.eval()
    return model, X[:n], y[:n], X[n:], y[n:]


def timed(fn, repeat=1):
    """Best wall-clock and best process-CPU seconds over ``repeat`` runs, and the output.

    CPU time (all threads of this process) is the steadier figure on a shared
    machine: other users' load stretches wall-clock time, not our CPU time.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), out


def forward_pass(model, X, batch_size):
    with torch.no_grad():
        for s in range(0, X.shape[0], batch_size):
            model(X[s:s + batch_size])


def ip_pass(model, X, y, Xv, yv, batch_size):
    a = make_adapter((model, nn.CrossEntropyLoss()))
    train = a.training_data(X, y.numpy())
    from skinfluence import Utility

    v = a.objective_gradient(Utility().terms(a, Xv, yv.numpy()))
    return lambda: a.score_pass(train, [a.theta], [v], batch_size=batch_size)[:, 0]


def captum_scores(model, X, y, Xv, yv, batch_size, aggregate=True):
    from captum.influence import TracInCP

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "final.pt")
        torch.save(model.state_dict(), path)
        loss = nn.CrossEntropyLoss(reduction="sum")
        tracin = TracInCP(model, torch.utils.data.TensorDataset(X, y), [path], loss_fn=loss,
                          batch_size=batch_size, sample_wise_grads_per_batch=True)
        if aggregate:
            wall, cpu, s = timed(lambda: tracin.influence((Xv, yv), aggregate=True).reshape(-1))
        else:  # the (n_val, n_train) matrix, then its mean over the validation rows
            wall, cpu, s = timed(lambda: tracin.influence((Xv, yv)).sum(0))
        return wall, cpu, (s / len(Xv)).detach().numpy()


def captum_matrix_scores(model, X, y, Xv, yv, batch_size):
    return captum_scores(model, X, y, Xv, yv, batch_size, aggregate=False)


def dattri_scores(model, X, y, Xv, yv, batch_size):
    from dattri.algorithm.tracin import TracInAttributor
    from dattri.task import AttributionTask

    def loss_func(params, data):
        x, t = data
        out = torch.func.functional_call(model, params, (x.unsqueeze(0),))
        return nn.functional.cross_entropy(out, t.unsqueeze(0))

    task = AttributionTask(loss_func=loss_func, model=model, checkpoints=model.state_dict())
    att = TracInAttributor(task=task, weight_list=torch.ones(1), normalized_grad=False)
    att.projector_kwargs = None  # exact Grad-Dot, no random projection
    dl = torch.utils.data.DataLoader
    train = dl(torch.utils.data.TensorDataset(X, y), batch_size=batch_size, shuffle=False)
    val = dl(torch.utils.data.TensorDataset(Xv, yv), batch_size=len(Xv), shuffle=False)
    wall, cpu, s = timed(lambda: att.attribute(train, val).mean(1))
    return wall, cpu, s.detach().numpy()


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(n, batch_size):
    """Peak resident memory added by one scoring pass (fresh process, Linux).

    The high-water mark is reset just before the pass (``/proc/self/clear_refs``),
    so the figure is the pass's own peak above what was resident before it.
    """
    model, X, y, Xv, yv = make_problem(n, train=False)
    run = ip_pass(model, X, y, Xv, yv, batch_size)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kib("VmRSS")
    run()
    peak = _status_kib("VmHWM")
    print(json.dumps({"n": n, "batch_size": batch_size,
                      "peak_added_mib": round((peak - before) / 1024, 1),
                      "data_mib": round(X.numel() * 4 / 2**20, 1)}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--n-val", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--baselines", default="captum,captum-matrix,dattri")
    p.add_argument("--baseline-n", type=int, default=20_000,
                   help="rows for captum-matrix and dattri (captum: all of --n)")
    p.add_argument("--memory", action="store_true", help="only the memory table")
    p.add_argument("--memory-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        return memory_child(*args.memory_child)
    if args.memory:
        for n in (25_000, 100_000, 400_000):
            for bs in (1024, 4096, 16384):
                out = subprocess.run([sys.executable, __file__, "--memory-child", str(n),
                                      str(bs)], capture_output=True, text=True, check=True)
                print(out.stdout.strip())
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, n={args.n}, "
          f"n_val={args.n_val}, batch_size={args.batch_size}")
    model, X, y, Xv, yv = make_problem(args.n, n_val=args.n_val)
    P = sum(q.numel() for q in model.parameters())
    print(f"MLP parameters: {P}")
    bs = args.batch_size
    forward_pass(model, X[:bs], bs)  # warm-up: kernels, allocator
    run = ip_pass(model, X, y, Xv, yv, bs)
    run()
    # the machine is shared: interleave the two and keep each one's best round
    fwd, ip = [], []
    for _ in range(args.repeat):
        fwd.append(timed(lambda: forward_pass(model, X, bs))[:2])
        *t, ours = timed(run)
        ip.append(t)
    (fw, fc), (iw, ic) = np.min(fwd, axis=0), np.min(ip, axis=0)
    ew, ec, _ = timed(lambda: influence_scores((model, nn.CrossEntropyLoss()), X, y.numpy(), Xv,
                                               yv.numpy(), batch_size=bs), 3)
    ours = ours.numpy()
    print("                        wall s   cpu s   ratio to forward (wall / cpu)")
    print(f"forward pass           {fw:7.3f} {fc:7.3f}")
    print(f"IP scoring pass (JVP)  {iw:7.3f} {ic:7.3f}   {iw / fw:.2f} / {ic / fc:.2f}")
    print(f"influence_scores(ip)   {ew:7.3f} {ec:7.3f}   {ew / fw:.2f} / {ec / fc:.2f}")
    baselines = {"captum": captum_scores, "captum-matrix": captum_matrix_scores,
                 "dattri": dattri_scores}
    for name in [b for b in args.baselines.split(",") if b and b != "none"]:
        nb = args.n if name == "captum" else min(args.n, args.baseline_n)
        bw, bc, theirs = baselines[name](model, X[:nb], y[:nb], Xv, yv, min(bs, 1024))
        ref = ours[:nb]
        sub = ip_pass(model, X[:nb], y[:nb], Xv, yv, bs)
        ow, oc, _ = (iw, ic, None) if nb == args.n else timed(sub, args.repeat)
        r = np.corrcoef(ref, theirs)[0, 1]
        rel = np.abs(ref - theirs).max() / np.abs(ref).max()
        print(f"{name:13s} n={nb:6d}: {bw:8.2f} s wall {bc:8.2f} s cpu; IP pass on the same rows "
              f"{ow:.3f} / {oc:.3f} s; speed ratio {bw / ow:6.1f}x wall {bc / oc:6.1f}x cpu; "
              f"Pearson {r:.7f}; max rel diff {rel:.1e}")


if __name__ == "__main__":
    main()
