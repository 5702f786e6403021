"""Hessians and Hessian-vector products of a network's training loss (autograd, vmap)."""

import numpy as np
import torch
from torch.func import grad, jvp, vjp, vmap

from ._torch_dict import mappable, one_row_batch
from ._torch_params import as_vector

#: basis vectors x rows processed together when the explicit Hessian is built
HESSIAN_BLOCK = 1 << 18
#: a block of directions is scored from per-row gradients, not one JVP per direction, when
#: it has at least ROW_GRADIENT_MIN_DIRECTIONS of them and (directions) x (the forward
#: pass's multiply-adds per row / parameters) reaches ROW_GRADIENT_MIN_WORK: a JVP costs a
#: few forward passes per direction, the per-row gradients about n x P work whatever the
#: block, so convolutions (each weight applied at many positions) gain from 8 directions
#: on, an MLP (one multiply-add per weight) from 32. Chosen on a batch-norm CNN and an
#: MLP, checked on held-out nets (benchmarks/models/RESULTS_direction_block.md).
ROW_GRADIENT_MIN_DIRECTIONS = 8
ROW_GRADIENT_MIN_WORK = 32
#: rows x parameters of per-row gradients held at a time (128 MiB in float32): each group
#: re-reads the (P, B) block, so fewer, larger groups
ROW_GRADIENT_BLOCK = 1 << 25


class TorchCurvatureMixin:
    """The curvature part of :class:`~skinfluence.models.torch.TorchModelAdapter`."""

    # ------------------------------------------------------------------ Hessians
    def _weighted_rows(self, train, indices, sample_weights):
        w = train.relative_weight
        if indices is None:
            X, y = train.X, train.y
        else:
            idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64, device=train.X.device)
            X, y, w = train.X[idx], train.y[idx], w[idx]
        if sample_weights is None:
            c = w / train.n
        else:
            c = w * torch.as_tensor(np.asarray(sample_weights), dtype=self.dtype, device=w.device)
        return X, y, c

    def _weighted_loss(self, member, x, y, c):
        losses = self._losses(member, x, y)
        return lambda theta: (c * losses(theta)).sum()

    def hessian(self, train, indices=None, sample_weights=None, theta=None, batch_size=4096):
        """Mean-form Hessian (P x P numpy float64): ``sum_s c_s hess l_s + diag(decay)``,
        from stacked forward-over-reverse Hessian-vector products."""
        member = self._member(theta)

        def rows_hvp(x, yy, cc):
            g = grad(self._weighted_loss(member, x, yy, cc))
            return lambda e: jvp(g, (member.theta,), (e,))[1]
        return self._explicit(rows_hvp, *self._weighted_rows(train, indices, sample_weights),
                              batch_size)

    def _explicit(self, rows_product, X, y, c, batch_size):
        """P x P numpy float64 ``sum over row blocks of product(unit vectors)`` plus the
        weight decay, symmetrised: a block of unit vectors at a time (``vmap``), so memory
        stays bounded. ``rows_product(x, y, c)`` -> the rows' vmappable product."""
        P = self.n_params
        cols = min(P, 512)
        rows = max(1, min(batch_size, HESSIAN_BLOCK // cols))
        M = torch.zeros((P, P), dtype=torch.float64, device=self.device)
        for c0 in range(0, P, cols):
            k = min(cols, P - c0)
            E = torch.zeros((k, P), dtype=self.dtype, device=self.device)
            E[torch.arange(k), c0 + torch.arange(k)] = 1.0
            for s in range(0, X.shape[0], rows):
                x, yy = self._rows(X, y, s, s + rows)
                M[c0:c0 + k] += vmap(rows_product(x, yy, c[s:s + rows].to(self.device)))(
                    E).double()
        M = 0.5 * (M + M.T) + torch.diag(self.weight_decay.double())
        return M.cpu().numpy()

    def hvp(self, train, vec, theta=None, batch_size=4096, indices=None, sample_weights=None):
        """Mean-form Hessian-vector product, streamed; returned like ``vec`` (tensor or numpy)."""
        member = self._member(theta)
        v = as_vector(vec, self.theta)
        X, y, c = self._weighted_rows(train, indices, sample_weights)
        out = torch.zeros_like(v)
        for s in range(0, X.shape[0], batch_size):
            x, yy = self._rows(X, y, s, s + batch_size)
            g = grad(self._weighted_loss(member, x, yy, c[s:s + batch_size].to(self.device)))
            out += jvp(g, (member.theta,), (v,))[1]
        out = out + self.weight_decay * v
        if isinstance(vec, np.ndarray):
            return out.double().cpu().numpy()
        return out.to(vec.dtype)

    # ------------------------------------------------------------------ Gauss-Newton
    def _gauss_newton_rows(self, member, x, y, c):
        """``u -> sum_s c_s J_s^T (hess_f l_s) J_s u`` on the rows ``x`` (u: (P,) or (k, P)).

        ``J_s`` is the Jacobian of row s's natural output (logits, or the
        prediction: ``NetSpec.natural_output``) and ``hess_f l_s`` the Hessian of
        its loss in that output (cross-entropy, the logistic loss or squared
        error: positive semi-definite), so the curvature is positive
        semi-definite whatever the network.
        """
        def output(theta):
            return self.spec.natural_output(self._output(member, theta, x))

        out, pullback = vjp(output, member.theta)

        def loss_slope(o):
            return grad(lambda o: (c * self.spec.natural_loss(o, y)).sum())(o)

        def product(u):
            ju = jvp(output, (member.theta,), (u,))[1]
            return pullback(jvp(loss_slope, (out,), (ju,))[1])[0]
        return product

    def gauss_newton(self, train, theta=None, batch_size=4096):
        """Mean-form Gauss-Newton matrix (P x P numpy float64) plus the weight decay."""
        member = self._member(theta)
        return self._explicit(lambda x, yy, cc: self._gauss_newton_rows(member, x, yy, cc),
                              *self._weighted_rows(train, None, None), batch_size)

    def gauss_newton_vp(self, train, vec, theta=None, batch_size=4096):
        """Mean-form Gauss-Newton-vector product (plus the weight decay), streamed."""
        member = self._member(theta)
        v = as_vector(vec, self.theta)
        X, y, c = self._weighted_rows(train, None, None)
        out = torch.zeros_like(v)
        for s in range(0, X.shape[0], batch_size):
            x, yy = self._rows(X, y, s, s + batch_size)
            out += self._gauss_newton_rows(member, x, yy, c[s:s + batch_size].to(self.device))(v)
        out = out + self.weight_decay * v
        if isinstance(vec, np.ndarray):
            return out.double().cpu().numpy()
        return out.to(vec.dtype)

    def regulariser_hessian_mean(self, train):
        """The weight decay's diagonal (the loss is a mean already, whatever ``train``)."""
        return self.weight_decay

    def hessian_norms(self, train, theta=None):
        """``||hess_f l_i||_F * (||a_i||^2 + 1)``, a_i the penultimate embedding."""
        emb, P = self._embed_and_proba(train.X)
        if self.is_regressor:  # (f - y)^2: curvature 2 in the output
            curv = np.full(P.shape[0], 2.0)
        elif self.spec.binary_output:
            curv = P[:, 1] * (1.0 - P[:, 1])
        else:
            s2 = (P ** 2).sum(1)
            curv = np.sqrt(np.maximum(s2 - 2.0 * (P ** 3).sum(1) + s2 ** 2, 0.0))
        sq = np.einsum("ij,ij->i", emb, emb) + 1.0
        return curv * sq * train.relative_weight.double().cpu().numpy()


def row_gradients_times(row_loss, theta, x, y, v):
    """(n, B): each row's gradient of ``row_loss(theta, x_batch_of_one, y_batch_of_one)``
    (``vmap`` over ``grad``) times the block ``v`` (P, B).

    Rows go in groups of at most ``ROW_GRADIENT_BLOCK / P`` so the (rows, P)
    gradients stay bounded; the product never forms more than one group's.
    """
    def one(theta_, xi, yi):
        return row_loss(theta_, one_row_batch(xi), yi[None])[0]

    per_row = vmap(grad(one), in_dims=(None, 0, 0))
    xs, n = mappable(x), y.shape[0]
    group = max(1, ROW_GRADIENT_BLOCK // max(1, theta.numel()))
    parts = []
    for s in range(0, n, group):
        rows = {k: t[s:s + group] for k, t in xs.items()} if isinstance(xs, dict) \
            else xs[s:s + group]
        parts.append(per_row(theta, rows, y[s:s + group]) @ v)
    return torch.cat(parts)


def _directional(f, theta, v, n_rows, random=False, batched=True):
    """Derivative of ``f`` (a vector of n values) along ``v`` (P,) or each column of v (P, B).

    A block goes through ``vmap`` over ``jvp`` in groups of at most
    ``HESSIAN_BLOCK / n_rows`` columns (bounded memory): (n,) or (n, B).
    ``random``: dropout is on (activation members), one mask for every column
    (vmap's randomness="same", measured 13x slower, so only then).
    ``batched=False``: one JVP per column (recurrent kernels have no vmap rule).
    """
    if v.ndim == 1:
        return jvp(f, (theta,), (v,))[1]
    if not batched:
        return torch.stack([jvp(f, (theta,), (v[:, b],))[1] for b in range(v.shape[1])], 1)
    group = max(1, HESSIAN_BLOCK // max(1, n_rows))
    one = (lambda t: jvp(f, (theta,), (t,))[1])
    batched = vmap(one, randomness="same" if random else "error")
    parts = [batched(v[:, b:b + group].T)
             for b in range(0, v.shape[1], group)]
    return torch.cat(parts).T
