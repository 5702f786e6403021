"""K-FAC: influence with a Kronecker-factored Hessian of a network's Linear layers.

For a ``Linear`` layer with input ``a`` (a 1 appended for the bias) and
output ``s``, the Gauss-Newton block of the mean-form Hessian is
``mean_i (a_i a_i^T) kron (J_i^T H_i J_i)``, ``H_i`` the Hessian of the loss in
the network's output and ``J_i`` the Jacobian of the output in ``s``. K-FAC
replaces it by ``A kron B``, ``A = mean_i a_i a_i^T`` and ``B = mean_i J_i^T H_i
J_i``, and ignores the blocks between layers. Both factors are computed
exactly (``H_i = sum_k c_k c_k^T``, one backward pass per output column),
with the sample weights. Then, per layer,

    v = (A kron B + (decay + damping) I)^-1 grad J

by the factors' eigendecompositions. It is exact when the network is one
Linear layer and ``H_i`` is the same for every row (a constant output
Hessian: e.g. the softmax at equal logits), and costs two passes over the
training rows plus ``O(d_in^3 + d_out^3)`` per layer, so it reaches layers
whose explicit Hessian would not fit.

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

from ..utils._compat import Interval
from ._base import Method, MethodOutput, boosted_output

_KINDS = ("cross_entropy", "bce_logits")


class KFAC(Method):
    """Influence with a Kronecker-factored (K-FAC) Hessian of the Linear layers.

    ``v = (A kron B + (decay + damping) I)^-1 grad J`` per layer (module
    docstring). torch networks whose chosen parameters all belong to
    ``torch.nn.Linear`` layers, trained with ``CrossEntropyLoss`` or
    ``BCEWithLogitsLoss`` (e.g. scikit-learn's ``MLPClassifier``). A layer's
    weight decay enters as the mean of its entries'.

    Parameters
    ----------
    damping : float, default=1e-3
        Added to every layer's factored Hessian (> 0: the factors are
        singular where an input or output never varies).

    Examples
    --------
    >>> from skinfluence import KFAC
    >>> KFAC(damping=0.01)
    KFAC(damping=0.01)
    """

    shorthand = "kfac"
    _parameter_constraints = {"damping": [Interval(numbers.Real, 0, None, closed="neither")]}

    def __init__(self, damping=1e-3):
        self.damping = damping

    def compute(self, ctx):
        self.validate()
        boosted_output(ctx, self)  # refused by name on boosted trees
        a = ctx.adapter
        layers = _linear_layers(a)  # refuses other models before torch is imported
        import torch

        grad = ctx.gradient().detach()  # (P,), or (P, m): one column per test row
        A, B = ctx.cached("kfac_factors", lambda: _factors(a, ctx.train, layers, ctx.batch_size))
        roots = ctx.cached("kfac_eigh", lambda: [(torch.linalg.eigh(Al), torch.linalg.eigh(Bl))
                                                 for Al, Bl in zip(A, B)])
        decay = a.space.unflatten(a.weight_decay)
        columns = grad[:, None] if grad.ndim == 1 else grad
        v = torch.stack([self._precondition(a, layers, roots, decay, columns[:, j])
                         for j in range(columns.shape[1])], 1)
        v = v[:, 0] if grad.ndim == 1 else v
        scores = a.score_pass(ctx.train, [a.theta], [v], batch_size=ctx.batch_size,
                              progress=ctx.progress)[:, 0]
        return MethodOutput(scores, damping=float(self.damping))

    def _precondition(self, a, layers, roots, decay, grad):
        """``(A kron B + (decay + damping) I)^-1 grad`` layer by layer, for one gradient (P,)."""
        import torch

        parts = a.space.unflatten(grad)
        out = {}
        for (name, layer), ((ea, Ua), (eb, Ub)) in zip(layers, roots):
            W = parts[_pname(name, "weight")].double()
            has_bias = _pname(name, "bias") in parts
            M = torch.cat([W, parts[_pname(name, "bias")].double()[:, None]], 1) if has_bias else W
            lam = torch.cat([decay[_pname(name, "weight")].reshape(-1)]
                            + ([decay[_pname(name, "bias")]] if has_bias else [])).double().mean()
            V = Ub @ ((Ub.T @ M @ Ua) / (eb[:, None] * ea[None, :] + lam + self.damping)) @ Ua.T
            out[_pname(name, "weight")] = V[:, :W.shape[1]]
            if has_bias:
                out[_pname(name, "bias")] = V[:, -1]
        return a.space.flatten({k: t.to(grad.dtype) for k, t in out.items()})


def _linear_layers(adapter):
    """``[(name, Linear)]`` owning the chosen parameters; an error for anything else."""
    if getattr(adapter, "family", None) != "torch" or adapter.spec.kind not in _KINDS:
        raise TypeError(
            "KFAC needs a torch network trained with CrossEntropyLoss or BCEWithLogitsLoss "
            "(or an MLPClassifier); use ExactHessian or SampledHessian for other models."
        )
    import torch  # a torch adapter exists, so torch is installed

    modules = dict(adapter.module.named_modules())
    names = []
    for p in adapter.space.names:
        owner, _, leaf = p.rpartition(".")
        if not isinstance(modules.get(owner), torch.nn.Linear) or leaf not in ("weight", "bias"):
            raise TypeError(
                f"KFAC factors Linear layers only; the parameter {p!r} is not a Linear "
                "layer's. Choose Linear parameters with params=[...] (e.g. "
                "params='last_layer' when the last layer is Linear)."
            )
        if _pname(owner, "weight") not in adapter.space.names:
            raise TypeError(f"KFAC: {p!r} is chosen without {_pname(owner, 'weight')!r}; "
                            "choose both.")
        if owner not in names:
            names.append(owner)
    return [(n, modules[n]) for n in names]


def _pname(layer, leaf):
    """A parameter's name: ``layer.leaf`` (``leaf`` for the module itself, layer "")."""
    return f"{layer}.{leaf}" if layer else leaf


def _factors(adapter, train, layers, batch_size):
    """Per layer: ``A = sum_i c_i a_i a_i^T`` and ``B = sum_i c_i J_i^T H_i J_i``, float64."""
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
    try:
        for s in range(0, train.n, batch_size):
            x, _ = adapter._rows(train.X, train.y, s, s + batch_size)
            c = c_all[s:s + batch_size].to(adapter.device).double()
            with torch.enable_grad():
                out = adapter._output(member, theta, x)
                roots = _hessian_roots(adapter.spec.kind, out.detach())
                for k, (name, layer) in enumerate(layers):
                    a = ins[name].detach().double()
                    if a.dim() != 2:
                        raise TypeError(
                            f"KFAC: the Linear layer {name!r} reads inputs of shape "
                            f"{tuple(a.shape)}; only (n_samples, features) inputs are factored."
                        )
                    if _pname(name, "bias") in chosen:
                        a = torch.cat([a, torch.ones_like(a[:, :1])], 1)
                    A[k] = A[k] + (a * c[:, None]).T @ a
                targets = [outs[name] for name, _ in layers]
                for j, root in enumerate(roots):
                    gs = torch.autograd.grad(out, targets, grad_outputs=root.to(out.dtype),
                                             retain_graph=j + 1 < len(roots))
                    for k, g in enumerate(gs):
                        g = g.detach().double().reshape(-1, layers[k][1].out_features)
                        B[k] = B[k] + (g * c[:, None]).T @ g
    finally:
        for h in hooks:
            h.remove()
    return A, B


def _hessian_roots(kind, out):
    """Columns ``r_k`` (n x K each) with ``sum_k r_k r_k^T`` = the loss's Hessian in ``out``."""
    import torch

    if kind == "bce_logits":  # one logit: p (1 - p)
        p = torch.sigmoid(out.double())
        return [torch.sqrt(p * (1 - p)).reshape(out.shape)]
    p = torch.softmax(out.double(), 1)  # diag(p) - p p^T = sum_k p_k (e_k - p)(e_k - p)^T
    eye = torch.eye(out.shape[1], dtype=p.dtype, device=p.device)
    return [torch.sqrt(p[:, k:k + 1]) * (eye[k] - p) for k in range(out.shape[1])]
