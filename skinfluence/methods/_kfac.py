"""K-FAC: influence with a Kronecker-factored Hessian of a network's layers.

For a ``Linear`` layer with input ``a`` (a 1 appended for the bias) and
output ``s``, the Gauss-Newton block of the mean-form Hessian is
``mean_i (a_i a_i^T) kron (J_i^T H_i J_i)``, ``H_i`` the Hessian of the loss in
the network's output and ``J_i`` the Jacobian of the output in ``s``. K-FAC
replaces it by ``A kron B``, ``A = mean_i a_i a_i^T`` and ``B = mean_i J_i^T H_i
J_i``, and ignores the blocks between layers. Both factors are computed
exactly (``H_i = sum_k c_k c_k^T``, one backward pass per output column),
with the sample weights.

A convolution (``Conv1d``, ``Conv2d``; one group, zero padding) is the same
product at every position ``l`` of its output, on the input patch ``a_il``
(the unfolded receptive field). Kronecker factors for convolutions (KFC,
Grosse and Martens, 2016) take the positions' contributions as independent
and alike: ``A = mean_i sum_l a_il a_il^T`` and
``B = mean_i (1 / L) sum_l g_il g_il^T``, with ``g_il`` the output's
derivative at position l and ``L`` the number of positions; the weight
``(out, in, k...)`` is factored as the matrix ``(out, in * prod(k))``. A
Linear layer is the case ``L = 1``.

Then, per layer,

    v = (A kron B + (decay + damping) I)^-1 grad J

by the factors' eigendecompositions ``A = U_A diag(a) U_A^T``, ``B = U_B diag(b)
U_B^T``. With ``eigen_correction=True`` (EK-FAC: George et al., 2018; Grosse et
al., 2023) the eigenvalues ``b_j a_k`` are replaced by the mean squared
per-sample gradient in that eigenbasis, ``Lambda_jk = mean_i sum_r
(U_B^T G_ir U_A)_jk^2`` (``G_ir`` row i's gradient of the layer's weight along
Hessian root r): the exact diagonal of the Gauss-Newton block in the
Kronecker eigenbasis, for one more pass over the rows. Parameters of other layers (batch
normalisation, embeddings, grouped convolutions) are not factored: they are
named in a warning and preconditioned by a scaled identity,
``v = grad J / (s + decay + damping)``, with ``s`` the factored layers' mean
curvature (the parameter-weighted mean of ``trace(A kron B) / size``). It is
exact when the network is one Linear layer and ``H_i`` is the same for every
row (a constant output Hessian: e.g. the softmax at equal logits), and costs
two passes over the training rows plus ``O(d_in^3 + d_out^3)`` per layer, so
it reaches layers whose explicit Hessian would not fit.

Examples
--------
>>> import numpy as np, torch
>>> from skinfluence import influence_scores
>>> from skinfluence import KFAC
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> X = np.random.default_rng(0).normal(size=(60, 3)).astype("float32")
>>> y = (X[:, 0] > 0).astype(int)
>>> net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
>>> s = influence_scores(net, X, y, X[:20], y[:20], loss=torch.nn.CrossEntropyLoss(),
...                      method=KFAC(damping=1e-2))
>>> s.shape
(60,)
"""
import numbers
import warnings

from ..utils._compat import Interval
from ._base import Method, MethodOutput, boosted_output

#: classification losses, each factored through the logits its output stands for
_KINDS = ("cross_entropy", "bce_logits", "nll_proba", "nll_logproba", "bce_proba")


class KFAC(Method):
    """Influence with a Kronecker-factored (K-FAC / KFC) Hessian of Linear and conv layers.

    ``v = (A kron B + (decay + damping) I)^-1 grad J`` per layer (module
    docstring): ``torch.nn.Linear``, ``Conv1d`` and ``Conv2d`` layers (one
    group, zero padding), in torch networks trained with a classification
    loss (``CrossEntropyLoss``, ``BCEWithLogitsLoss``, or ``NLLLoss`` /
    ``BCELoss`` on (log-)probabilities, factored through the logits they stand
    for; e.g. skorch's default classifier, scikit-learn's ``MLPClassifier``);
    the criterion's class weights, ``pos_weight``, ``label_smoothing`` and
    ``ignore_index`` weigh each row's output factor as they weigh its loss. The
    other chosen parameters (batch normalisation...) are named in a warning
    and preconditioned by the factored layers' mean curvature (a scaled
    identity); ``extras["unfactored"]`` lists them. A layer's weight decay
    enters as the mean of its entries'.

    Parameters
    ----------
    damping : float, default=1e-3
        Added to every layer's factored Hessian (> 0: the factors are
        singular where an input or output never varies).
    eigen_correction : bool, default=False
        EK-FAC: the eigenvalues of ``A kron B`` replaced by the Gauss-Newton
        diagonal in their eigenbasis (module docstring); one more pass over
        the training rows.

    Examples
    --------
    >>> from skinfluence import KFAC
    >>> KFAC(damping=0.01)
    KFAC(damping=0.01)
    >>> KFAC(eigen_correction=True)
    KFAC(eigen_correction=True)
    """

    shorthand = "kfac"
    _parameter_constraints = {"damping": [Interval(numbers.Real, 0, None, closed="neither")],
                              "eigen_correction": ["boolean"]}

    def __init__(self, damping=1e-3, eigen_correction=False):
        self.damping = damping
        self.eigen_correction = eigen_correction

    def compute(self, ctx):
        self.validate()
        boosted_output(ctx, self)  # refused by name on boosted trees
        a = ctx.adapter
        layers, unfactored = _factored_layers(a)  # refuses other models before torch is imported
        import torch

        if unfactored:
            warnings.warn(
                f"KFAC factors Linear and convolution layers; {', '.join(map(repr, unfactored))} "
                "are preconditioned by a scaled identity (the factored layers' mean curvature).",
                UserWarning, stacklevel=4)
        grad = ctx.gradient().detach()  # (P,), or (P, m): one column per test row
        A, B = ctx.cached("kfac_factors", lambda: _factors(a, ctx.train, layers, ctx.batch_size))
        roots = ctx.cached("kfac_eigh", lambda: [(torch.linalg.eigh(Al), torch.linalg.eigh(Bl))
                                                 for Al, Bl in zip(A, B)])
        if self.eigen_correction:  # the Gauss-Newton diagonal in each layer's eigenbasis
            corrected = ctx.cached("ekfac_eigenvalues", lambda: _factors(
                a, ctx.train, layers, ctx.batch_size,
                bases=[(Ua, Ub) for (_, Ua), (_, Ub) in roots]))
            roots = [((ea, Ua), (eb, Ub), lam) for ((ea, Ua), (eb, Ub)), lam
                     in zip(roots, corrected)]
        decay = a.space.unflatten(a.weight_decay)
        columns = grad[:, None] if grad.ndim == 1 else grad
        v = torch.stack([self._precondition(a, layers, unfactored, roots, decay, columns[:, j])
                         for j in range(columns.shape[1])], 1)
        v = v[:, 0] if grad.ndim == 1 else v
        scores = a.score_pass(ctx.train, [a.theta], [v], batch_size=ctx.batch_size,
                              progress=ctx.progress)[:, 0]
        return MethodOutput(scores, damping=float(self.damping),
                            extras={"unfactored": list(unfactored)})

    def _precondition(self, a, layers, unfactored, roots, decay, grad):
        """``(A kron B + (decay + damping) I)^-1 grad`` layer by layer, for one gradient (P,)."""
        import torch

        parts = a.space.unflatten(grad)
        out = {}
        traces, sizes = [], []
        for (name, layer), root in zip(layers, roots):
            (ea, Ua), (eb, Ub) = root[:2]
            eigenvalues = root[2] if len(root) > 2 else eb[:, None] * ea[None, :]
            weight = parts[_pname(name, "weight")]
            W = weight.double().reshape(weight.shape[0], -1)  # a kernel as (out, in * k...)
            has_bias = _pname(name, "bias") in parts
            M = torch.cat([W, parts[_pname(name, "bias")].double()[:, None]], 1) if has_bias else W
            lam = torch.cat([decay[_pname(name, "weight")].reshape(-1)]
                            + ([decay[_pname(name, "bias")]] if has_bias else [])).double().mean()
            V = Ub @ ((Ub.T @ M @ Ua) / (eigenvalues + lam + self.damping)) @ Ua.T
            out[_pname(name, "weight")] = V[:, :W.shape[1]].reshape(weight.shape)
            if has_bias:
                out[_pname(name, "bias")] = V[:, -1]
            traces.append(float(eigenvalues.mean()) * M.numel())
            sizes.append(M.numel())
        if unfactored:  # a scaled identity at the factored layers' mean curvature
            curvature = sum(traces) / max(sum(sizes), 1)
            for name in unfactored:
                out[name] = parts[name].double() / (curvature + decay[name].double()
                                                    + self.damping)
        return a.space.flatten({k: t.to(grad.dtype) for k, t in out.items()})


def _factored_layers(adapter):
    """``[(name, layer)]`` of the Linear / conv layers owning chosen parameters, and the
    names of the chosen parameters no such layer owns; an error for other models."""
    if getattr(adapter, "family", None) != "torch" or adapter.spec.kind not in _KINDS:
        raise TypeError(
            "KFAC needs a torch network trained with a classification loss (CrossEntropyLoss, "
            "NLLLoss, BCEWithLogitsLoss or BCELoss) or an MLPClassifier; use ExactHessian or "
            "SampledHessian for other models."
        )
    modules = dict(adapter.module.named_modules())
    names, unfactored = [], []
    for p in adapter.space.names:
        owner, _, leaf = p.rpartition(".")
        if not _factorable(modules.get(owner)) or leaf not in ("weight", "bias"):
            unfactored.append(p)
            continue
        if _pname(owner, "weight") not in adapter.space.names:
            raise TypeError(f"KFAC: {p!r} is chosen without {_pname(owner, 'weight')!r}; "
                            "choose both.")
        if owner not in names:
            names.append(owner)
    if not names:
        raise TypeError(
            "KFAC factors Linear and convolution layers (Conv1d, Conv2d); none of the chosen "
            f"parameters ({', '.join(map(repr, unfactored))}) belongs to one. Use "
            "ExactHessian, or choose such layers with params=[...].")
    return [(n, modules[n]) for n in names], unfactored


def _factorable(module):
    """A Linear layer, or a one-group, zero-padded Conv1d / Conv2d."""
    import torch

    if isinstance(module, torch.nn.Linear):
        return True
    return isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d)) and module.groups == 1 \
        and module.padding_mode == "zeros" and not isinstance(module.padding, str)


def _pname(layer, leaf):
    """A parameter's name: ``layer.leaf`` (``leaf`` for the module itself, layer "")."""
    return f"{layer}.{leaf}" if layer else leaf


def _patches(layer, x):
    """The layer's input as (n, L, features): rows for Linear, unfolded patches for a conv."""
    import torch

    if isinstance(layer, torch.nn.Linear):
        if x.dim() != 2:
            raise TypeError(
                f"KFAC: a Linear layer reads inputs of shape {tuple(x.shape)}; only "
                "(n_samples, features) inputs are factored.")
        return x[:, None, :]
    if isinstance(layer, torch.nn.Conv1d):  # a one-row image
        x = x[:, :, None, :]
        kernel, stride = (1, layer.kernel_size[0]), (1, layer.stride[0])
        padding, dilation = (0, layer.padding[0]), (1, layer.dilation[0])
    else:
        kernel, stride, padding, dilation = (layer.kernel_size, layer.stride, layer.padding,
                                             layer.dilation)
    cols = torch.nn.functional.unfold(x, kernel, dilation=dilation, padding=padding,
                                      stride=stride)  # (n, in * k..., L)
    return cols.transpose(1, 2)


def _factors(adapter, train, layers, batch_size, bases=None):
    """Per layer: ``A = sum_i c_i sum_l a_il a_il^T`` and
    ``B = sum_i c_i (1 / L) sum_l J_il^T H_i J_il``, float64. With the factors'
    eigenbases ``bases`` [(U_A, U_B)]: per layer the corrected eigenvalues
    ``sum_i c_i sum_r (U_B^T G_ir U_A)^2`` instead (EK-FAC)."""
    import torch

    member = adapter._member(None)
    theta = member.theta.detach().clone().requires_grad_(True)  # so the layers' outputs
    # are in the graph: the backward passes read their gradients
    chosen = set(adapter.space.names)
    c_all = train.relative_weight / train.n
    ins, outs = {}, {}
    hooks = []
    for name, layer in layers:
        def keep(mod, inp, out, name=name):
            ins[name], outs[name] = inp[0], out
        hooks.append(layer.register_forward_hook(keep))
    A = [0.0] * len(layers)
    B = [0.0] * len(layers)
    patches = [None] * len(layers)
    try:
        for s in range(0, train.n, batch_size):
            x, y = adapter._rows(train.X, train.y, s, s + batch_size)
            c = c_all[s:s + batch_size].to(adapter.device).double()
            with torch.enable_grad():
                # probabilities and log-probabilities are taken back to logits, where the
                # loss's Hessian is the softmax / sigmoid one below
                out = adapter.spec.natural_output(adapter._output(member, theta, x))
                # class weights and pos_weight scale each row's Hessian in the logits
                scale = adapter.spec.logit_hessian_scale(y).sqrt()
                roots = [scale.reshape(-1, *[1] * (out.dim() - 1)) * r
                         for r in _hessian_roots(adapter.spec.binary_output, out.detach())]
                for k, (name, layer) in enumerate(layers):
                    a = _patches(layer, ins[name].detach().double())  # (n, L, features)
                    if _pname(name, "bias") in chosen:
                        a = torch.cat([a, torch.ones_like(a[..., :1])], -1)
                    patches[k] = a
                    if bases is None:
                        A[k] = A[k] + torch.einsum("n,nlf,nlg->fg", c, a, a)
                targets = [outs[name] for name, _ in layers]
                for j, root in enumerate(roots):
                    gs = torch.autograd.grad(out, targets, grad_outputs=root.to(out.dtype),
                                             retain_graph=j + 1 < len(roots))
                    for k, g in enumerate(gs):
                        g = g.detach().double()
                        if g.dim() > 2:  # a conv's output: (n, out, positions...)
                            g = g.reshape(g.shape[0], g.shape[1], -1).transpose(1, 2)
                        else:
                            g = g[:, None, :]
                        if bases is None:
                            B[k] = B[k] + torch.einsum("n,nlf,nlg->fg", c, g, g) / g.shape[1]
                            continue
                        Ua, Ub = bases[k]
                        # row i's weight gradient along this root, in the eigenbasis
                        per_row = torch.einsum("nlo,nli->noi", g, patches[k])
                        projected = Ub.T @ per_row @ Ua
                        A[k] = A[k] + torch.einsum("n,njk->jk", c, projected ** 2)
    finally:
        for h in hooks:
            h.remove()
    return A if bases is not None else (A, B)


def _hessian_roots(binary, out):
    """Columns ``r_k`` (n x K each) with ``sum_k r_k r_k^T`` = the loss's Hessian in the
    logits ``out``."""
    import torch

    if binary:  # one logit: p (1 - p)
        p = torch.sigmoid(out.double())
        return [torch.sqrt(p * (1 - p)).reshape(out.shape)]
    p = torch.softmax(out.double(), 1)  # diag(p) - p p^T = sum_k p_k (e_k - p)(e_k - p)^T
    eye = torch.eye(out.shape[1], dtype=p.dtype, device=p.device)
    return [torch.sqrt(p[:, k:k + 1]) * (eye[k] - p) for k in range(out.shape[1])]
