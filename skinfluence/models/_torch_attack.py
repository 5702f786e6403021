"""PGD evasion attacks on a network: the rows moved within an l2 or linf ball."""

import numpy as np
import torch

from ._torch_dict import DictRows
from ._torch_rows import CHUNK


class TorchAttackMixin:
    """The attack part of :class:`~skinfluence.models.torch.TorchModelAdapter`."""

    def attack(self, X, y_idx, objective):
        """PGD attacked copy of the rows within the ball ``||delta|| <= epsilon``.

        ``objective.norm``: "linf" (also None, the historical default) or "l2".
        Each step moves every input by ``alpha * u(grad_x l)`` with ``u`` the
        sign (linf) or the gradient over its l2 norm per row (l2), ``alpha =
        epsilon`` for one step (FGSM) and ``2.5 epsilon / steps`` for PGD, then
        projects back into the ball around the clean input (clipping for linf,
        rescaling for l2); no box constraint on the values.
        """
        objective.check_params()
        eps, steps, norm = objective.epsilon, objective.steps, objective.norm or "linf"
        if isinstance(X, DictRows):
            raise TypeError("AdversarialRobustness attacks one input tensor; a dict input "
                            "(several forward() arguments) is not supported.")
        if not X.is_floating_point():
            raise TypeError("AdversarialRobustness needs floating-point inputs to attack.")
        alpha = eps if steps == 1 else 2.5 * eps / steps
        y = torch.as_tensor(np.asarray(y_idx),
                            dtype=self.dtype if self.is_regressor else torch.int64)
        parts = []
        for s in range(0, X.shape[0], CHUNK):
            x0, yy = self._rows(X, y, s, s + CHUNK)
            x = x0.clone()
            for _ in range(int(steps)):
                x.requires_grad_(True)
                with torch.enable_grad():
                    loss = self.spec.loss(self.spec.output(self.module(x)), yy).sum()
                    (g,) = torch.autograd.grad(loss, x)
                x = _project(x.detach() + alpha * _ascent(g, norm), x0, eps, norm)
            parts.append(x.detach())
        return torch.cat(parts).to(X.device)


def _row_norms(t):
    """l2 norm of each row of t (all but the first dimension), broadcastable to t."""
    return t.flatten(1).norm(dim=1).reshape((-1,) + (1,) * (t.dim() - 1))


def _ascent(g, norm):
    """Unit-ball direction of steepest ascent: sign(g) (linf) or g / ||g||_2 per row (l2)."""
    if norm == "linf":
        return g.sign()
    return g / _row_norms(g).clamp_min(torch.finfo(g.dtype).tiny)


def _project(x, x0, eps, norm):
    """Nearest point of the ball ``||x - x0|| <= eps`` (clip for linf, rescale for l2)."""
    if norm == "linf":
        return torch.minimum(torch.maximum(x, x0 - eps), x0 + eps)
    delta = x - x0
    scale = (eps / _row_norms(delta).clamp_min(torch.finfo(x.dtype).tiny)).clamp_max(1.0)
    return x0 + delta * scale
