"""Networks: CG with default damping before / after the cheap damping estimate; IP's cost.

A CNN on digits as (n, 1, 8, 8) images (about 11k parameters), trained for a
few epochs per seed, scored against a held-out split:

- ``ExactHessian(solver="cg")`` with defaults, with the damping search the
  package used before (scipy ``eigsh`` up to 400 HVPs, then power iterations;
  copied below) and with the current one, interleaved in one process. Reported:
  HVPs (damping search + CG), seconds, the damping chosen, and the Spearman
  correlation of the scores with the "before" scores.
- A smaller CNN (about 5k parameters) where the explicit Hessian is cheap:
  the same two CG runs against ``ExactHessian(solver="cholesky")`` at its
  default damping, Spearman correlation of the scores.
- IP's scoring time in units of one forward pass over the training rows.

Run from the repository root: ``PYTHONPATH=. OMP_NUM_THREADS=1 nice python
benchmarks/models/bench_nets.py [--seeds 5]``
(BLAS and torch threads pinned to 1 here as well).
"""
import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits
from torch import nn

import skinfluence.methods._hessian_solve as methods
from skinfluence import ExactHessian, influence_scores
from skinfluence.models.torch import TorchModelAdapter


def old_positive_definite_shift(hvp, n):
    """The damping search before: eigsh (tol 1e-3, <= 400 HVPs), else power iterations."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    rng = np.random.default_rng(0)
    op = LinearOperator((n, n), matvec=lambda x: methods._numpy(hvp(x)).ravel(),
                        dtype=np.float64)
    ncv = min(n, 20)
    try:
        lam_min = eigsh(op, k=1, which="SA", v0=rng.standard_normal(n), tol=1e-3, ncv=ncv,
                        maxiter=max(1, 400 // ncv), return_eigenvectors=False)[0]
    except ArpackNoConvergence as exc:
        if len(exc.eigenvalues):
            lam_min = float(np.min(exc.eigenvalues))
        else:
            like = rng.standard_normal(n)
            top = methods._power_iteration(op.matvec, like, rng)
            lam_min = top - methods._power_iteration(lambda x: top * x - op.matvec(x), like,
                                                     rng)
    return float(max(0.0, -1.1 * lam_min))


def cnn(width):
    conv = [nn.Conv2d(1, width, 3), nn.Tanh()]
    if width > 8:
        conv += [nn.Conv2d(width, width, 3), nn.Tanh()]
    side = 4 if width > 8 else 6
    return nn.Sequential(*conv, nn.Flatten(), nn.Linear(width * side * side, 32), nn.Tanh(),
                         nn.Linear(32, 10))


def train(seed, width, X, y):
    torch.manual_seed(seed)
    net = cnn(width)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
    return net.eval()


class Counter:
    """Counts the adapter's HVPs and forward passes over rows."""

    def __init__(self):
        self.hvps = 0
        self._hvp = TorchModelAdapter.hvp
        counter = self

        def hvp(adapter, *args, **kwargs):
            counter.hvps += 1
            return counter._hvp(adapter, *args, **kwargs)
        TorchModelAdapter.hvp = hvp


def run(rule, net, data, method):
    X, y, Xv, yv = data
    methods._positive_definite_shift = rule
    counter.hvps = 0
    t0 = time.perf_counter()
    res = influence_scores((net, nn.CrossEntropyLoss()), X, y, Xv, yv, method=method,
                           return_result=True, random_state=0)
    return res, time.perf_counter() - t0, counter.hvps


def forward_time(net, X, repeat=5):
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        net(Xt)
        t0 = time.perf_counter()
        for _ in range(repeat):
            net(Xt)
    return (time.perf_counter() - t0) / repeat


def ms(values):
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.3g} +- {a.std():.2g}"


def table(rows, header, keys):
    print("| damping search | " + " | ".join(header) + " |")
    print("|---" * (len(header) + 1) + "|")
    for key, label in keys:
        print(f"| {label} | " + " | ".join(ms(c) for c in zip(*rows[key])) + " |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    new_rule = methods._positive_definite_shift
    rows = {k: [] for k in ("old", "new", "small_old", "small_new", "ip")}
    for seed in range(args.seeds):
        idx = np.random.default_rng(seed).permutation(len(y))
        tr, va = idx[:1000], idx[1000:1300]
        data = (X[tr], y[tr], X[va], y[va])
        big = train(seed, 16, X[tr], y[tr])
        small = train(seed, 4, X[tr], y[tr])
        n_params = sum(p.numel() for p in big.parameters())
        n_small = sum(p.numel() for p in small.parameters())
        cg = ExactHessian(solver="cg")
        old, t_old, h_old = run(old_positive_definite_shift, big, data, cg)
        new, t_new, h_new = run(new_rule, big, data, cg)
        rho = spearmanr(old.scores, new.scores)[0]
        rows["old"].append((h_old, t_old, old.damping, old.extras["solver_iterations"], 1.0))
        rows["new"].append((h_new, t_new, new.damping, new.extras["solver_iterations"], rho))
        chol, _, _ = run(new_rule, small, data, ExactHessian(solver="cholesky"))
        for key, rule in (("small_old", old_positive_definite_shift), ("small_new", new_rule)):
            res, t, h = run(rule, small, data, cg)
            rows[key].append((h, t, res.damping, chol.damping,
                              spearmanr(res.scores, chol.scores)[0]))
        t0 = time.perf_counter()
        influence_scores((big, nn.CrossEntropyLoss()), *data, method="ip")
        t_ip = time.perf_counter() - t0
        rows["ip"].append((t_ip, t_ip / forward_time(big, data[0])))
        print(f"seed {seed}: P={n_params} (small {n_small}) old {rows['old'][-1]} "
              f"new {rows['new'][-1]} small_old {rows['small_old'][-1]} "
              f"small_new {rows['small_new'][-1]} ip {rows['ip'][-1]}", flush=True)
    methods._positive_definite_shift = new_rule

    print(f"\n11k-parameter CNN (P={n_params}), {args.seeds} seeds, mean +- std")
    table(rows, ["HVPs (search + CG)", "seconds", "damping", "CG iterations",
                 "Spearman vs before"],
          (("old", "before (eigsh <= 400 HVPs)"), ("new", "now")))
    print(f"\nsmall CNN (P={n_small}): CG vs Cholesky (Cholesky at its default damping)")
    table(rows, ["HVPs", "seconds", "damping", "Cholesky's damping", "Spearman vs Cholesky"],
          (("small_old", "before"), ("small_new", "now")))
    cols = list(zip(*rows["ip"]))
    print(f"\nIP at P={n_params}: {ms(cols[0])} s = {ms(cols[1])} forward passes over the "
          "1000 training rows")


if __name__ == "__main__":
    counter = Counter()
    with threadpool_limits(1):
        main()
