"""IP Ensemble: IP averaged over perturbed copies of the model or training checkpoints."""
import numbers

import numpy as np

from ..utils._compat import Interval, StrOptions
from ._base import Method, MethodOutput, boosted_output


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
        (benchmarks/models/RESULTS_torch.md, 10 seeds): parameter noise
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
        boosted_output(ctx, self)  # refused by name on boosted trees
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
