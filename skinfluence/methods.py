"""Influence methods: each one only decides the direction ``v``.

Scores are ``score_i = <v, grad l(z_i; theta)>``; higher = more beneficial to
the objective, negative = detrimental. A method calls the adapter for the
direction's pieces and for the one streamed scoring pass.
"""
import numbers
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._params import resolve
from ._compat import Interval, StrOptions
from ._method import _DAMPING, Context, Method, MethodOutput, _check_damping  # noqa: F401
from ._newton_loo import NewtonLOO
from .kfac import KFAC
from ._solvers import conjugate_gradient, factorize, lissa, solve_factored
from .samplers import SAMPLERS, Sampler


def _single_pass(ctx, v):
    a = ctx.adapter
    return a.score_pass(ctx.train, [a.theta], [v], batch_size=ctx.batch_size,
                        progress=ctx.progress)[:, 0]


class IP(Method):
    """Inner Product influence (Hessian-free): ``v = grad J(V; theta)``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import influence_scores, IP
    >>> from skinfluence.datasets import make_flipped_blobs
    >>> d = make_flipped_blobs(random_state=0)
    >>> model = LogisticRegression().fit(d.X_train, d.y_train)
    >>> s = influence_scores(model, d.X_train, d.y_train, d.X_test, d.y_test, method=IP())
    >>> s.shape
    (150,)
    """

    shorthand = "ip"

    def compute(self, ctx):
        return MethodOutput(_single_pass(ctx, ctx.gradient()))


class _HessianSolveMixin:
    """Solve ``(H + damping I) v = grad J`` by Cholesky, CG or LiSSA."""

    _parameter_constraints = {
        "damping": _DAMPING,
        "solver": [StrOptions({"auto", "cholesky", "cg", "lissa"})],
        "max_cholesky_params": [Interval(numbers.Integral, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "lissa_scale": [Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    def _solve(self, ctx, hessian, hvp):
        a = ctx.adapter
        grad = ctx.gradient()
        solver = self.solver
        if solver == "auto":
            solver = "cholesky" if a.n_params <= self.max_cholesky_params else "cg"
        if solver == "cholesky":
            factor, damping = ctx.cached("factor", lambda: factorize(
                hessian(), self.damping, a.null_directions(), overwrite_h=True))
            # the factor is numpy float64; score_pass takes numpy directions on any device
            return solve_factored(factor, _numpy(grad)), damping, {}
        if solver not in ("cg", "lissa"):
            raise ValueError(
                f"solver must be 'auto', 'cholesky', 'cg' or 'lissa', got {solver!r}."
            )
        if self.damping != "auto":
            damping = float(self.damping)
        elif getattr(a, "convex", False):  # no shift needed to make H positive definite
            damping = 0.0
        else:
            damping = ctx.cached("damping", lambda: _positive_definite_shift(
                hvp, a.n_params, ctx.rng))
        tol = _tolerance(self.tol, grad)
        if grad.ndim == 1:
            v, it, res, damping = self._iterate(ctx, solver, hvp, damping, grad, tol)
        else:  # a block: one solve per direction (each HVP is a pass over the rows)
            runs = []
            for j in range(grad.shape[1]):  # a damping raised on the way carries forward
                runs.append(self._iterate(ctx, solver, hvp, damping, grad[:, j], tol))
                damping = runs[-1][3]
            # every column at the one damping reported: re-solve those solved below it
            runs = [r if r[3] == damping else
                    self._iterate(ctx, solver, hvp, damping, grad[:, j], tol)
                    for j, r in enumerate(runs)]
            stack = _stack_columns(grad)
            v, it, res = stack([r[0] for r in runs]), sum(r[1] for r in runs), \
                max(r[2] for r in runs)
        if "damping" in ctx.cache:  # later blocks start from the raised damping
            ctx.cache["damping"] = max(ctx.cache["damping"], damping)
        if res > tol and solver == "cg":
            warnings.warn(
                f"CG stopped after {it} iterations at relative residual {res:.2g} (tol "
                f"{tol:.2g}): the scores are those of an approximate inverse-HVP. Raise "
                "max_iter, or damping to improve the conditioning.", ConvergenceWarning,
                stacklevel=4)
        return v, damping, {"solver_iterations": it, "solver_residual": res}

    def _iterate(self, ctx, solver, hvp, damping, b, tol):
        """One solve of ``(H + damping I) x = b``: (x, iterations, relative residual, damping).

        CG with ``damping="auto"`` on a non-convex model raises the damping past
        a direction of non-positive curvature and restarts (the damping returned).
        """
        if solver == "cg":
            return _solve_raising_damping(
                hvp, b, damping, tol, self.max_iter,
                raise_damping=self.damping == "auto" and not getattr(ctx.adapter, "convex", False))
        op = (lambda x: hvp(x) + damping * x)
        scale = self.lissa_scale or ctx.cached(
            "lissa_scale", lambda: 1.1 * _power_iteration(op, b, ctx.rng))
        v, it = lissa(op, b, scale=scale, n_iter=self.max_iter or 1000, tol=tol)
        return v, it, _check_lissa(op, b, v, scale), damping


def _stack_columns(like):
    """Stack vectors as the columns of a block of ``like``'s type (torch or numpy)."""
    if hasattr(like, "detach"):
        import torch

        return lambda cols: torch.stack(cols, dim=1)
    return lambda cols: np.stack(cols, axis=1)


#: times CG restarts with a larger damping after meeting negative curvature
MAX_DAMPING_RAISES = 8


def _solve_raising_damping(hvp, grad, damping, tol, max_iter, raise_damping):
    """CG on ``H + damping I``; with ``raise_damping``, a direction of non-positive
    curvature (the estimated shift was too small) raises the damping past it and restarts.

    Returns ``(v, total CG iterations, relative residual, damping used)``.
    """
    total = 0
    for raises in range(MAX_DAMPING_RAISES + 1):
        seen = [np.inf]

        def op(x, d=damping):
            out = hvp(x) + d * x
            seen[0] = min(seen[0], float(x @ out) / max(float(x @ x), 1e-300))
            return out
        v, it, res = conjugate_gradient(op, grad, tol=tol, max_iter=max_iter)
        total += it
        if not raise_damping or seen[0] > 0 or raises == MAX_DAMPING_RAISES:
            return v, total, res, damping
        # H has curvature <= seen - damping along x: shift past it, at least doubling (a
        # Rayleigh quotient is barely negative where the lowest eigenvalue is far below)
        damping = max(2.0 * damping, 1.1 * (damping - seen[0]) + 1e-8)


def _tolerance(tol, grad):
    """``tol="auto"``: 1e-10 for float64 HVPs, 1e-5 for float32 ones (their floor)."""
    if tol != "auto":
        return float(tol)
    return 1e-10 if str(getattr(grad, "dtype", "float64")).endswith("float64") else 1e-5


def _check_lissa(op, b, x, scale):
    """LiSSA diverges when ``scale`` is below H's largest eigenvalue: refuse its output.

    Returns the relative residual."""
    r = op(x) - b
    res = float((r @ r) ** 0.5) / max(float((b @ b) ** 0.5), 1e-300)
    if not np.isfinite(res) or res > 1.0:
        raise ValueError(
            f"LiSSA diverged (relative residual {res:.3g}) with lissa_scale={scale:.3g}: the "
            "scale must exceed the damped Hessian's largest eigenvalue; use lissa_scale=None "
            "to estimate it."
        )
    return res


def _numpy(a):
    return a.detach().cpu().double().numpy() if hasattr(a, "detach") else a


#: Lanczos steps (one HVP each) of the damping search on a network.
LANCZOS_STEPS = 20


def _positive_definite_shift(hvp, n, rng):
    """A damping making ``H + damping I`` positive definite, from a few HVPs.

    ``LANCZOS_STEPS`` Lanczos steps (full reorthogonalisation) from a random
    start give the Ritz values of H; the smallest one minus its residual bound
    ``|beta_m s_m|`` estimates H's smallest eigenvalue from below, and
    ``-1.1`` times that estimate is the shift (0 when it is positive). A shift
    that still leaves negative curvature is raised where CG meets it
    (:func:`_solve_raising_damping`). Used for CG / LiSSA on non-convex
    models, where the explicit Hessian is too large to factorise.
    """
    m = min(n, LANCZOS_STEPS)
    Q = np.zeros((m, n))
    alpha, beta = np.zeros(m), np.zeros(m)
    q = rng.standard_normal(n)
    Q[0] = q / np.linalg.norm(q)
    for j in range(m):
        w = _numpy(hvp(Q[j])).ravel()
        alpha[j] = Q[j] @ w
        w -= Q[:j + 1].T @ (Q[:j + 1] @ w)  # full reorthogonalisation (twice is enough)
        w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
        beta[j] = np.linalg.norm(w)
        if j + 1 == m or beta[j] <= 1e-12 * max(1.0, abs(alpha[j])):
            m = j + 1
            break
        Q[j + 1] = w / beta[j]
    theta, S = np.linalg.eigh(np.diag(alpha[:m]) + np.diag(beta[:m - 1], 1)
                              + np.diag(beta[:m - 1], -1))
    lam_min = theta[0] - abs(beta[m - 1] * S[m - 1, 0])
    return float(max(0.0, -1.1 * lam_min))


def _power_iteration(op, like, rng, n_iter=50):
    noise = rng.standard_normal(like.shape[0])
    # a torch tensor keeps its dtype and device; numpy stays numpy
    x = like.new_tensor(noise) if hasattr(like, "new_tensor") else noise
    for _ in range(n_iter):
        x = op(x)
        x = x / (x @ x) ** 0.5
    return float(x @ op(x))


class ExactHessian(_HessianSolveMixin, Method):
    """Classical influence: ``v = (H + damping I)^-1 grad J``.

    ``H`` is the Hessian of the estimator's actual training objective in mean
    form (for ``LogisticRegression(C)``: ``mean_i hess l_i + I_w / (C n)``).
    Removing sample i changes J by about ``+score_i / n``.

    Parameters
    ----------
    damping : float or "auto", default="auto"
        "auto": 0 when H is positive definite, else the smallest value that
        makes it so (reported as ``damping`` on the result).
    solver : {"auto", "cholesky", "cg", "lissa"}, default="auto"
        "auto": Cholesky up to ``max_cholesky_params`` parameters, CG above.
    max_cholesky_params : int, default=5000
    tol : float or "auto", default="auto"
        Relative residual ``||(H + damping I) v - grad J|| / ||grad J||`` at
        which CG / LiSSA stop. "auto": 1e-10 for float64 HVPs (linear
        models), 1e-5 for float32 ones (networks: their rounding floor).
    max_iter : int or None, default=None
        None: CG stops after ``min(10 P, 500)`` iterations (one HVP, i.e. one
        pass over the training rows, each), LiSSA after 1000 steps. The
        residual reached is ``extras["solver_residual"]``; a CG run that ends
        above ``tol`` warns (ConvergenceWarning). With
        ``damping="auto"`` on a network, the damping is estimated from 20
        Lanczos steps (20 HVPs), and raised where CG meets negative curvature
        (CG restarts; ``solver_iterations`` counts every run).
    lissa_scale : float or None, default=None
        LiSSA's scale (above H's largest eigenvalue); None estimates it.

    Examples
    --------
    >>> from skinfluence import ExactHessian
    >>> ExactHessian(damping=1e-3)
    ExactHessian(damping=0.001)
    """

    shorthand = "exact_hessian"

    def __init__(self, damping="auto", solver="auto", max_cholesky_params=5000, tol="auto",
                 max_iter=None, lissa_scale=None):
        self.damping = damping
        self.solver = solver
        self.max_cholesky_params = max_cholesky_params
        self.tol = tol
        self.max_iter = max_iter
        self.lissa_scale = lissa_scale

    def compute(self, ctx):
        _check_damping(self.damping)
        a, t, bs = ctx.adapter, ctx.train, ctx.batch_size
        v, damping, extras = self._solve(
            ctx, lambda: a.hessian(t, batch_size=bs), lambda x: a.hvp(t, x, batch_size=bs)
        )
        return MethodOutput(_single_pass(ctx, v), damping=damping, extras=extras)


class SampledHessian(_HessianSolveMixin, Method):
    """Influence with the Hessian estimated on a subset chosen by a sampler.

    ``v = (H_S + damping I)^-1 grad J`` where ``H_S`` is an unbiased estimate of
    the mean data Hessian from ``m`` samples, plus the exact regulariser.

    Parameters
    ----------
    sampler : {"logit", "random", "feature"} or Sampler, default="logit"
        "logit" measured the most faithful (benchmarks/RESULTS.md); sampling
        only pays when m is large against the number of parameters.
    fraction : float in (0, 1], default=0.1
        Subset size as a fraction of n (ignored when ``n_samples`` is set).
    n_samples : int or None, default=None
    damping, solver, max_cholesky_params, tol, max_iter :
        As for :class:`ExactHessian`.

    Examples
    --------
    >>> from skinfluence import SampledHessian
    >>> SampledHessian(sampler="random", fraction=0.2)
    SampledHessian(fraction=0.2, sampler='random')
    """

    shorthand = "sampled_hessian"
    _parameter_constraints = {
        **_HessianSolveMixin._parameter_constraints,
        "sampler": [StrOptions(set(SAMPLERS)), Sampler],
        "fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def __init__(self, sampler="logit", fraction=0.1, n_samples=None, damping="auto",
                 solver="auto", max_cholesky_params=5000, tol="auto", max_iter=None):
        self.sampler = sampler
        self.fraction = fraction
        self.n_samples = n_samples
        self.damping = damping
        self.solver = solver
        self.max_cholesky_params = max_cholesky_params
        self.tol = tol
        self.max_iter = max_iter

    lissa_scale = None

    def subset_size(self, n):
        if self.n_samples is not None:
            if not isinstance(self.n_samples, numbers.Integral) or not 1 <= self.n_samples <= n:
                raise ValueError(f"n_samples must be an int in [1, {n}], got {self.n_samples!r}.")
            return int(self.n_samples)
        if not isinstance(self.fraction, numbers.Real) or not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction!r}.")
        return max(1, int(round(self.fraction * n)))

    def compute(self, ctx):
        _check_damping(self.damping)
        a, t, bs = ctx.adapter, ctx.train, ctx.batch_size
        sampler = resolve(self.sampler, SAMPLERS, "sampler")
        idx, omega = ctx.cached("subset", lambda: sampler.sample(a, t, self.subset_size(t.n),
                                                                 ctx.rng))
        v, damping, extras = self._solve(
            ctx, lambda: a.hessian(t, idx, omega, batch_size=bs),
            lambda x: a.hvp(t, x, batch_size=bs, indices=idx, sample_weights=omega),
        )
        extras["subset_indices"] = idx
        return MethodOutput(_single_pass(ctx, v), damping=damping, extras=extras)


class IPEnsemble(Method):
    """IP averaged over an ensemble of parameter sets (the enhancement of Yang et al.).

    From Z. Yang, H. Yue, J. Chen and H. Liu, "Revisit, Extend, and Enhance
    Hessian-Free Influence Functions".

    Member k is scored at its own parameters ``theta_k`` against its own
    direction ``v_k = grad J(V; theta_k)``; the scores are averaged (the
    per-member matrix is kept on the result as ``member_scores``: its spread is
    a per-sample uncertainty). A member is just a parameter set, whatever its
    source: perturbed copies of the fitted model, or checkpoints taken during
    training; the sources share one code path (:meth:`member_parameters`).
    Higher scores = more beneficial; negative = detrimental.

    Parameters
    ----------
    n_members : int, default=5
        Ensemble size for ``members="perturb"`` (checkpoints: all are used).
    perturbation : {"dropout", "gaussian", "activation"}, default="dropout"
        ``members="perturb"`` only. "dropout": ``theta_k = theta * m_k / (1 - p)``,
        ``m_k ~ Bernoulli(1 - p)``; "gaussian": ``theta_k = theta + N(0, sigma^2)``;
        "activation" (torch only): the module's own dropout layers on, a fixed
        seed per member. Measured on networks that memorised flipped labels
        (benchmarks/RESULTS_torch.md, 10 seeds): parameter noise
        moved flip-detection AUC unreliably (-0.16 to +0.12 by noise level;
        there, every level lowered the mean, 0.78 -> 0.72-0.77), activation
        dropout did not beat IP, checkpoint members raised it (0.78 -> 0.83,
        worst seed 0.59 -> 0.76).
    dropout : float in [0, 1), default=0.01
    sigma : float, default=0.01
    include_base : bool, default=True
        ``members="perturb"``: member 0 is the unperturbed model.
    members : {"perturb", "checkpoints"}, default="perturb"
        "checkpoints" (torch models): snapshots of the parameters taken during
        training (TracIn's checkpoints), from ``checkpoints`` or, for a skorch
        net, its :class:`skinfluence.callbacks.Snapshots` callback. Each is
        scored with its own validation direction at its own parameters.
    checkpoints : list or None, default=None
        ``members="checkpoints"``: state dicts (``module.state_dict()``),
        modules or :class:`~skinfluence.callbacks.Snapshot` objects. None: the
        skorch net's ``Snapshots`` callback.
    lr_weighted : bool, default=False
        Weight each checkpoint by the learning rate in force when it was taken
        (TracIn): a weighted mean. Needs every member's learning rate.

    Examples
    --------
    >>> from skinfluence import IPEnsemble
    >>> IPEnsemble(n_members=3, perturbation="gaussian")
    IPEnsemble(n_members=3, perturbation='gaussian')
    >>> IPEnsemble(members="checkpoints", lr_weighted=True)
    IPEnsemble(lr_weighted=True, members='checkpoints')
    """

    shorthand = "ip_ensemble"
    _parameter_constraints = {
        "n_members": [Interval(numbers.Integral, 1, None, closed="left")],
        "perturbation": [StrOptions({"dropout", "gaussian", "activation"})],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "sigma": [Interval(numbers.Real, 0, None, closed="left")],
        "include_base": ["boolean"],
        "members": [StrOptions({"perturb", "checkpoints"})],
        "checkpoints": [list, tuple, None],
        "lr_weighted": ["boolean"],
    }

    def __init__(self, n_members=5, perturbation="dropout", dropout=0.01, sigma=0.01,
                 include_base=True, members="perturb", checkpoints=None, lr_weighted=False):
        self.n_members = n_members
        self.perturbation = perturbation
        self.dropout = dropout
        self.sigma = sigma
        self.include_base = include_base
        self.members = members
        self.checkpoints = checkpoints
        self.lr_weighted = lr_weighted

    def _check(self):
        if not isinstance(self.n_members, numbers.Integral) or self.n_members < 1:
            raise ValueError(f"n_members must be a positive int, got {self.n_members!r}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}.")
        if self.sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {self.sigma!r}.")
        if self.members not in ("perturb", "checkpoints"):
            raise ValueError(
                f"members must be 'perturb' or 'checkpoints', got {self.members!r}."
            )
        if self.checkpoints is not None and self.members != "checkpoints":
            raise ValueError("checkpoints=... is used only with members='checkpoints'.")
        if self.lr_weighted and self.members != "checkpoints":
            raise ValueError("lr_weighted=True needs members='checkpoints'.")

    def member_parameters(self, ctx):
        """The members' parameter sets (a list): the one place members come from."""
        self._check()
        a = ctx.adapter
        if self.members == "checkpoints":
            source = getattr(a, "checkpoint_members", None)
            if source is None:
                raise TypeError(
                    "IPEnsemble(members='checkpoints') needs a torch model or skorch net "
                    f"(training checkpoints); got a {getattr(a, 'family', '?')} model."
                )
            return source(self.checkpoints)
        level = self.dropout if self.perturbation == "dropout" else self.sigma
        thetas = [a.theta] if self.include_base else []
        while len(thetas) < self.n_members:
            thetas.append(a.perturbed_parameters(self.perturbation, level, ctx.rng))
        return thetas

    def member_weights(self, thetas):
        """Members' weights in the mean: None (equal) or their learning rates."""
        if not self.lr_weighted:
            return None
        lrs = [getattr(t, "lr", None) for t in thetas]
        if any(lr is None for lr in lrs):
            raise ValueError(
                "lr_weighted=True needs the learning rate of every checkpoint: use the "
                "Snapshots callback (it records it) or pass Snapshot objects."
            )
        w = np.asarray(lrs, dtype=np.float64)
        if np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"lr_weighted=True: learning rates must be >= 0, not all 0: {lrs}.")
        return w

    def compute(self, ctx):
        a = ctx.adapter
        thetas = ctx.cached("members", lambda: self.member_parameters(ctx))
        directions = [ctx.gradient(th) for th in thetas]
        members = a.score_pass(ctx.train, thetas, directions, batch_size=ctx.batch_size,
                               progress=ctx.progress)
        weights = self.member_weights(thetas)
        if weights is None:
            return MethodOutput(members.mean(axis=1), member_scores=members)
        w = (weights / weights.sum()).reshape((-1,) + (1,) * (members.ndim - 2))
        if not isinstance(members, np.ndarray):  # torch tensor on the model's device
            w = members.new_tensor(w)
        return MethodOutput((members * w).sum(axis=1), member_scores=members,
                            extras={"member_weights": weights / weights.sum()})


METHODS = {c.shorthand: c for c in (IP, IPEnsemble, ExactHessian, SampledHessian, NewtonLOO,
                                    KFAC)}
