"""Hessian-based influence: ``v = (H + damping I)^-1 grad J``, exact or on sampled rows."""
import numbers

from ..utils._params import resolve
from ..utils._compat import Interval, StrOptions
from ._base import Method, MethodOutput, _check_damping, boosted_output
from ._hessian_solve import _HessianSolveMixin
from ._ip import _single_pass
from .samplers import SAMPLERS, Sampler


class ExactHessian(_HessianSolveMixin, Method):
    """Classical influence: ``v = (H + damping I)^-1 grad J``.

    ``H`` is the Hessian of the estimator's actual training objective in mean
    form (for ``LogisticRegression(C)``: ``mean_i hess l_i + I_w / (C n)``).
    Removing sample i changes J by about ``+score_i / n``.

    Parameters
    ----------
    damping : float or "auto", default="auto"
        "auto": 0 when H is positive definite; else (a network) 1.1 times a
        20-step Lanczos lower estimate of H's most negative eigenvalue, the
        same whichever the solver, raised where the solve still meets
        negative curvature (reported as ``damping`` on the result).
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
    curvature : {"hessian", "gauss_newton"}, default="hessian"
        "hessian": the training objective's Hessian. "gauss_newton": its
        generalised Gauss-Newton matrix ``mean_i J_i^T (hess_f l_i) J_i`` plus
        the weight decay (``J_i`` the Jacobian of row i's logits, or of its
        prediction for a regressor; a net that outputs probabilities or
        log-probabilities is taken back to logits), positive semi-definite
        whatever the network; on a network ``damping="auto"`` is then ``1e-2``
        times its largest eigenvalue (20 Lanczos steps). Equal to the Hessian
        for models whose outputs are linear in their parameters (the linear
        models), which then keep the Hessian's damping. On three small networks with
        flipped labels the two curvatures, each at its "auto" damping, rank
        rows about equally well (the Gauss-Newton solve needs fewer CG
        iterations); see the networks guide.

    Examples
    --------
    >>> from skinfluence import ExactHessian
    >>> ExactHessian(damping=1e-3)
    ExactHessian(damping=0.001)
    >>> ExactHessian(curvature="gauss_newton")
    ExactHessian(curvature='gauss_newton')
    """

    shorthand = "exact_hessian"
    boosted_form = "newton"
    _parameter_constraints = {
        **_HessianSolveMixin._parameter_constraints,
        "curvature": [StrOptions({"hessian", "gauss_newton"})],
    }

    def boosted_options(self):
        """Trees: each leaf's own curvature, ``H + lambda``; no other damping or solver."""
        for name, default in (("damping", "auto"), ("solver", "auto"),
                              ("curvature", "hessian")):
            if getattr(self, name) != default:
                raise ValueError(
                    f"ExactHessian({name}={getattr(self, name)!r}) on boosted trees: each "
                    "leaf's curvature is its Hessian sum plus the model's own L2 term, solved "
                    f"in closed form; leave {name}={default!r}.")
        return {}

    def __init__(self, damping="auto", solver="auto", max_cholesky_params=5000, tol="auto",
                 max_iter=None, lissa_scale=None, curvature="hessian"):
        self.damping = damping
        self.solver = solver
        self.max_cholesky_params = max_cholesky_params
        self.tol = tol
        self.max_iter = max_iter
        self.lissa_scale = lissa_scale
        self.curvature = curvature

    def compute(self, ctx):
        _check_damping(self.damping)
        if self.curvature not in ("hessian", "gauss_newton"):
            raise ValueError("curvature must be 'hessian' or 'gauss_newton', got "
                             f"{self.curvature!r}.")
        out = boosted_output(ctx, self)
        if out is not None:
            return out
        a, t, bs = ctx.adapter, ctx.train, ctx.batch_size
        if self.curvature == "gauss_newton" and not getattr(a, "linear_in_parameters", False):
            if not hasattr(a, "gauss_newton_vp"):
                raise TypeError(f"curvature='gauss_newton' is not available for a {a.family} "
                                "model; use curvature='hessian'.")
            v, damping, extras = self._solve(
                ctx, lambda: a.gauss_newton(t, batch_size=bs),
                lambda x: a.gauss_newton_vp(t, x, batch_size=bs), psd=True)
            return MethodOutput(_single_pass(ctx, v), damping=damping, extras=extras)
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
        "logit" measured the most faithful (benchmarks/methods/RESULTS_methods.md); sampling
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
        boosted_output(ctx, self)  # refused by name on boosted trees
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
