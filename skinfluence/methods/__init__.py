"""Influence methods: each one only decides the direction ``v``.

Scores are ``score_i = <v, grad l(z_i; theta)>``; higher = more beneficial to
the objective, negative = detrimental. A method calls the adapter for the
direction's pieces and for the one streamed scoring pass.
"""
from ._base import Context, Method, MethodOutput
from ._ip import IP
from ._ensemble import IPEnsemble
from ._hessian import ExactHessian, SampledHessian
from ._newton_loo import NewtonLOO
from ._kfac import KFAC

METHODS = {c.shorthand: c for c in (IP, IPEnsemble, ExactHessian, SampledHessian, NewtonLOO,
                                    KFAC)}

__all__ = ["Method", "Context", "MethodOutput", "IP", "IPEnsemble", "ExactHessian",
           "SampledHessian", "NewtonLOO", "KFAC", "METHODS"]
