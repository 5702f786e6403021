"""Which parameters count, their flat vector, and ensemble members.

``theta`` is the flat concatenation (module order) of the chosen parameters;
every other parameter and buffer stays fixed at the fitted values. A
:class:`Member` is one parameter set an :class:`~skinfluence.IPEnsemble` scores
at: a flat ``theta``, optionally the fixed tensors it comes with (a training
checkpoint carries its own values of the unchosen parameters and buffers), an
activation-dropout seed and the learning rate in force when it was taken.
"""
from collections.abc import Mapping
from dataclasses import dataclass
import numbers

import numpy as np
import torch
from torch import nn


@dataclass
class Member:
    """One parameter set of an ensemble (all tensors on the scoring device or CPU).

    Attributes
    ----------
    theta : Tensor (P,)
        The chosen parameters, flat.
    fixed : dict or None
        Values of the other parameters and buffers (None: the fitted ones).
    dropout_seed : int or None
        Not None: the module's own dropout layers are on, seeded per chunk from it.
    lr : float or None
        Learning rate in force when the checkpoint was taken.
    """

    theta: torch.Tensor
    fixed: dict = None
    dropout_seed: int = None
    lr: float = None


def last_layer(module):
    """Name prefix of the last submodule (in module order) that owns parameters."""
    last = None
    for name, sub in module.named_modules():
        if any(True for _ in sub.parameters(recurse=False)):
            last = name
    return last


def select_parameters(module, params):
    """Names of the parameters ``params`` selects: "all", "last_layer" or a list."""
    named = [n for n, p in module.named_parameters()]
    if not named:
        raise ValueError("The module has no parameters to score.")
    if isinstance(params, str):
        if params == "all":
            return named
        if params == "last_layer":
            prefix = last_layer(module)
            own = [n for n, _ in module.get_submodule(prefix).named_parameters(recurse=False)]
            return [f"{prefix}.{n}" if prefix else n for n in own]
        raise ValueError(
            f"params={params!r}: expected 'all', 'last_layer' or a list of parameter names."
        )
    try:
        chosen = list(params)
    except TypeError:
        raise TypeError(
            f"params must be 'all', 'last_layer' or a list of names, got {type(params).__name__}."
        ) from None
    unknown = [n for n in chosen if n not in named]
    if unknown or not chosen:
        raise ValueError(
            f"params: {unknown or 'empty list'} not parameters of the module; known: {named}."
        )
    return [n for n in named if n in set(chosen)]  # module order, no duplicates


class ParamSpace:
    """Flatten / unflatten the chosen parameters (views, differentiable)."""

    def __init__(self, module, names):
        named = dict(module.named_parameters())
        self.names = list(names)
        self.shapes = [named[n].shape for n in self.names]
        self.sizes = [named[n].numel() for n in self.names]
        self.n_params = int(sum(self.sizes))
        self.other = [n for n in named if n not in set(self.names)]
        #: the (sub)modules that own the chosen parameters, by name ("" for the root)
        self.owners = {n.rpartition(".")[0] for n in self.names}

    def flatten(self, tensors):
        return torch.cat([tensors[n].detach().reshape(-1) for n in self.names])

    def unflatten(self, flat):
        return {n: t.view(s) for n, t, s in zip(self.names, torch.split(flat, self.sizes),
                                                self.shapes)}

    def diagonal(self, values, like):
        """Flat vector holding ``values[name]`` on every entry of that parameter."""
        parts = [torch.full((k,), float(values.get(n, 0.0)), dtype=like.dtype, device=like.device)
                 for n, k in zip(self.names, self.sizes)]
        return torch.cat(parts)

    def member_from_state(self, state, module, device, dtype, lr=None, *, where="checkpoint"):
        """A :class:`Member` from a state dict (or a module) of the same architecture."""
        if isinstance(state, nn.Module):
            state = state.state_dict()
        if not isinstance(state, Mapping):
            raise TypeError(
                f"{where}: expected a state_dict (mapping of name -> tensor) or a module, "
                f"got {type(state).__name__}."
            )
        missing = [n for n in self.names if n not in state]
        if missing:
            raise ValueError(f"{where} lacks parameters {missing[:5]} of the module.")
        for n, s in zip(self.names, self.shapes):
            if tuple(state[n].shape) != tuple(s):
                raise ValueError(
                    f"{where}: parameter {n!r} has shape {tuple(state[n].shape)}, the module "
                    f"{tuple(s)}."
                )
        known = set(dict(module.named_parameters())) | set(dict(module.named_buffers()))
        fixed = {k: torch.as_tensor(v).to(device) for k, v in state.items()
                 if k in known and k not in set(self.names)}
        fixed = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in fixed.items()}
        theta = torch.cat([torch.as_tensor(state[n]).reshape(-1) for n in self.names])
        if lr is not None and not isinstance(lr, numbers.Real):
            raise TypeError(f"{where}: lr must be a number, got {lr!r}.")
        return Member(theta.to(device=device, dtype=dtype), fixed, None,
                      None if lr is None else float(lr))


def as_member(theta, default_theta):
    """Member from a flat vector (numpy or torch) or a Member; matched to the default."""
    if isinstance(theta, Member):
        return theta
    if theta is None:
        return Member(default_theta)
    t = torch.as_tensor(np.asarray(theta)) if isinstance(theta, np.ndarray) else theta
    return Member(t.to(device=default_theta.device, dtype=default_theta.dtype))


def as_vector(vec, like):
    """A direction (numpy or torch) as a tensor on ``like``'s device and dtype."""
    if isinstance(vec, Member):
        vec = vec.theta
    if isinstance(vec, np.ndarray):
        vec = torch.from_numpy(np.ascontiguousarray(vec))
    return vec.to(device=like.device, dtype=like.dtype)
