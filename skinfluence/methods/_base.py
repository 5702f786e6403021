"""What every influence method shares: its input, its output and its base class.

A method (:mod:`skinfluence.methods`, :mod:`skinfluence.methods._newton_loo`) reads a
:class:`Context` and returns a :class:`MethodOutput`; it decides the
direction(s) ``v`` and calls the adapter's one streamed scoring pass.
"""
from dataclasses import dataclass, field
import numbers

import numpy as np

from ..utils._params import ParamsObject
from ..utils._compat import Interval, StrOptions


@dataclass
class Context:
    """What a method needs: the adapter, the training rows and the objective terms.

    ``per_row=False``: one direction, from J (:func:`~skinfluence.influence_scores`).
    ``per_row=True``: a (P, m) block of directions, one per row of the terms
    (:func:`~skinfluence.influence_matrix`); every method then returns (n, m)
    scores from the same pass. ``cache`` keeps what does not depend on the
    direction (factorisations, members, subsets) across blocks of rows.
    """

    adapter: object
    train: object
    terms: object
    batch_size: int
    rng: np.random.Generator
    progress: object = None
    per_row: bool = False
    cache: dict = field(default_factory=dict)

    def gradient(self, theta=None):
        """``grad J`` (P,), or the (P, m) block of the rows' gradients when ``per_row``."""
        if self.per_row:
            return self.adapter.objective_gradients(self.terms, theta)
        return self.adapter.objective_gradient(self.terms, theta)

    def cached(self, key, compute):
        """``compute()`` the first time ``key`` is asked for, the stored value after."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


@dataclass
class MethodOutput:
    scores: np.ndarray
    member_scores: np.ndarray = None
    damping: float = None
    leverage: np.ndarray = None
    extras: dict = field(default_factory=dict)


class Method(ParamsObject):
    """Base of the influence methods: ``compute(ctx)`` -> :class:`MethodOutput`."""

    def compute(self, ctx):  # pragma: no cover
        raise NotImplementedError


_DAMPING = [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"})]


def _check_damping(damping):
    """``damping``: "auto" or a finite number >= 0 (NaN fails ``< 0``: tested as finite)."""
    if isinstance(damping, str) and damping == "auto":
        return
    if isinstance(damping, (bool, np.bool_)) or not isinstance(damping, numbers.Real) \
            or not np.isfinite(damping) or damping < 0:
        raise ValueError(
            f"damping must be a finite number >= 0 or 'auto', got {damping!r}."
        )


def boosted_output(ctx, method):
    """A boosted model's scores by ``method``'s form over the rounds; None for other models.

    Methods that mean something for trees declare ``boosted_form`` (and
    ``boosted_options()``); the others are refused by name.
    """
    if not getattr(ctx.adapter, "boosted", False):
        return None
    form = getattr(method, "boosted_form", None)
    if form is None:
        raise TypeError(
            f"method={type(method).__name__} has no meaning for boosted trees (their parameters "
            "are leaf values, each fitted once in its round); use 'ip' (gradients over the "
            "rounds), 'exact_hessian' (each leaf's Newton step) or 'newton_loo' "
            "(leave-one-out through the rounds).")
    from ._rounds import round_influence

    return MethodOutput(round_influence(ctx, form, **method.boosted_options()))
