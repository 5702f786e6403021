"""Adapter for ``torch.nn.Module`` (with a loss) and fitted skorch classifiers.

The network is read into a private, eval-mode copy (the caller's module or net
is never touched); the chosen parameters are one flat vector ``theta`` and
every forward pass is ``torch.func.functional_call`` at a parameter set.

- Scoring pass: ``score_i = w_i <v, grad l_i(theta)>`` is the directional
  derivative of the per-sample-loss vector along ``v``, so one forward-mode
  product (``torch.func.jvp``) per chunk of ``batch_size`` rows gives a whole
  chunk of scores, on the model's device, with no per-sample gradient matrix
  and no host round-trip inside the loop (measured ~3x a forward pass).
- Hessian: mean form ``H = (1/n) sum_i w_i hess l_i + diag(weight decay)``,
  the decay read from the optimizer (skorch) or ``weight_decay=``; without one,
  only the method's damping regularises. Explicit ``H`` from stacked
  forward-over-reverse Hessian-vector products (small P); ``hvp`` for CG.
- Objectives: the validation loss uses the same per-sample loss as training,
  probabilities come from the estimator's own ``predict_proba`` nonlinearity;
  the robustness attack is FGSM (``steps=1``) / PGD in an L-infinity or l2 ball.
- Members: a flat ``theta`` or a :class:`~skinfluence.models._torch_params.Member`
  (parameter noise, activation dropout, training checkpoints) everywhere a
  parameter set is accepted.

Examples
--------
>>> import numpy as np, torch
>>> from skinfluence import influence_scores
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> X = np.random.default_rng(0).normal(size=(60, 3)).astype("float32")
>>> y = (X[:, 0] > 0).astype(int)
>>> net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
>>> s = influence_scores(net, X, y, X[:20], y[:20], loss=torch.nn.CrossEntropyLoss())
>>> s.shape
(60,)
"""
import contextlib
import copy
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.func import grad, jvp, vmap

from .._validation import check_labels, is_sparse
from .base import ModelAdapter, TrainingData
from ._torch_dict import DictRows, forward
from ._torch_rows import DatasetRows, is_torch_rows
from ._torch_params import Member, ParamSpace, as_member, as_vector, last_layer, \
    select_parameters
from ._torch_spec import net_spec
from .linear_regressor import check_real_targets

__all__ = ["TorchModelAdapter", "make_torch_adapter"]

#: rows per chunk of the validation-side computations (gradient, attack, embedding)
CHUNK = 4096
#: basis vectors x rows processed together when the explicit Hessian is built
HESSIAN_BLOCK = 1 << 18
_OPTIONS = ("params", "loss", "weight_decay", "classes")


def make_torch_adapter(estimator, *, device="auto", **options):
    """The adapter for a torch model; ``options``: params, loss, weight_decay, classes.

    Examples
    --------
    >>> import torch
    >>> from skinfluence.models.torch import make_torch_adapter
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> a = make_torch_adapter(net, loss=torch.nn.CrossEntropyLoss(), params="last_layer")
    >>> a.space.names, a.n_params
    (['2.weight', '2.bias'], 10)
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(
            f"Unknown option(s) {unknown} for a torch model; expected any of {list(_OPTIONS)}."
        )
    return TorchModelAdapter(estimator, device=device, **options)


class TorchModelAdapter(ModelAdapter):
    """Differentiable view of a torch classifier (see the module docstring).

    Parameters
    ----------
    estimator : skorch NeuralNetClassifier / NeuralNetBinaryClassifier (fitted),
        ``(module, loss)`` or ``torch.nn.Module`` (then ``loss`` is required).
    device : "auto", "cpu", "cuda" or "cuda:N", default="auto"
        "auto": where the module's parameters are.
    params : "all", "last_layer" or list of parameter names, default="all"
        The parameters that count; the others stay fixed.
    loss : torch loss module or None
        For a bare module: the criterion it was trained with.
    weight_decay : float, dict {name: float} or None
        L2 coefficient of the training objective (overrides the optimizer's).
    classes : array-like or None
        Labels of the output columns (default ``arange(K)``; skorch: ``classes_``).
    """

    family = "torch"

    def __init__(self, estimator, *, device="auto", params="all", loss=None,
                 weight_decay=None, classes=None):
        self.spec = net_spec(estimator, device, loss=loss, weight_decay=weight_decay,
                             classes=classes)
        self.module = self.spec.module
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.space = ParamSpace(self.module, select_parameters(self.module, params))
        named = dict(self.module.named_parameters())
        self.theta = self.space.flatten(named)
        self.device, self.dtype = self.theta.device, self.theta.dtype
        if not self.dtype.is_floating_point:
            raise TypeError("The chosen parameters must be floating point.")
        self.n_params = self.space.n_params
        self.weight_decay = self.space.diagonal(self.spec.weight_decay, self.theta)
        self._classes = self.spec.classes
        #: an MSELoss net: real targets, no classes
        self.is_regressor = self.spec.regression
        self._dropouts = [m for m in self.module.modules()
                          if isinstance(m, nn.modules.dropout._DropoutNd)]
        self._feature_shape = None
        if self.spec.source == "skorch" and self._classes is not None and not \
                self.spec.binary_output and self._classes.dtype.kind in "iu" and \
                not np.array_equal(self._classes, np.arange(len(self._classes))):
            raise ValueError(
                f"The skorch net's classes_ are {self._classes.tolist()}, but skorch trains on "
                "y's values as class indices: labels must be 0..K-1."
            )

    # ------------------------------------------------------------------ data
    @property
    def classes_(self):
        if self.is_regressor:
            return None
        if self._classes is None:
            raise AttributeError("classes_ is known after the first X is checked.")
        return self._classes

    def check_X(self, X, name):
        """Rows as a tensor (float inputs cast to the parameters' dtype); never copied back.

        A DataLoader or map-style Dataset of (x, y) items becomes
        :class:`DatasetRows`: its rows are read a chunk at a time by each pass.
        """
        if is_torch_rows(X) or isinstance(X, DatasetRows):
            rows = X if isinstance(X, DatasetRows) else DatasetRows(X, self.dtype)
            self.check_X(rows[0:1], name)  # shape, dtype and the module's output
            return rows
        if isinstance(X, DictRows):
            return X
        if isinstance(X, Mapping):  # skorch's dict input: forward(**X)
            t = self._dict_rows(X, name)
            shape = t.row_shapes()
        else:
            t = self._tensor(X, name, min_ndim=2)
            shape = tuple(t.shape[1:])
        if self._feature_shape is None:
            self._feature_shape = shape
            self._check_output(t[:1], name)
        elif shape != self._feature_shape:
            raise ValueError(
                f"{name} has rows of shape {shape}, but the first data given "
                f"(X) had rows of shape {self._feature_shape}."
            )
        return t

    def _tensor(self, X, name, min_ndim):
        if torch.is_tensor(X):
            t = X.detach()
        else:
            if is_sparse(X):
                X = X.toarray()
            arr = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X)
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}.")
            t = torch.from_numpy(np.ascontiguousarray(arr))
        if t.ndim < min_ndim or t.shape[0] == 0:
            raise ValueError(
                f"{name} must have shape (n_samples, ...) with n_samples >= 1, "
                f"got {tuple(t.shape)}."
            )
        if t.is_floating_point() or t.dtype == torch.bool:
            t = t.to(self.dtype)
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} contains NaN or infinity.")
        return t

    def _dict_rows(self, X, name):
        if not X or not all(isinstance(k, str) for k in X):
            raise TypeError(f"{name}: a dict input must map forward() argument names (str) to "
                            f"arrays of rows; got keys {list(X)[:5]}.")
        tensors = {k: self._tensor(v, f"{name}[{k!r}]", min_ndim=1) for k, v in X.items()}
        lengths = {k: v.shape[0] for k, v in tensors.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{name}: the arrays of the dict must have the same number of "
                             f"rows; got {lengths}.")
        return DictRows(tensors)

    def _check_output(self, x, name="X"):
        with torch.no_grad():
            try:
                out = self.spec.output(forward(self.module, x.to(self.device)))
            except (RuntimeError, TypeError, IndexError) as exc:  # dtype or width mismatch
                raise ValueError(
                    f"{name}: the module cannot run on rows of shape {tuple(x.shape[1:])} and "
                    f"dtype {x.dtype} (cast X to float32 for float layers; give as many "
                    f"features as the model was built with): {exc}"
                ) from exc
        if self.spec.binary_output or self.spec.regression:
            return
        if out.dim() != 2:
            raise ValueError(f"The module must output (n, K) scores, got {tuple(out.shape)}.")
        if self._classes is None:
            self._classes = np.arange(out.shape[1])
        elif len(self._classes) != out.shape[1]:
            raise ValueError(
                f"The module outputs {out.shape[1]} columns but there are "
                f"{len(self._classes)} classes."
            )

    def encode(self, y, *, name, n):
        """Labels -> class indices; unknown labels are an error, never dropped.

        A regressor: the targets, validated (float64, finite)."""
        if torch.is_tensor(y):
            y = y.detach().cpu().numpy()
        if self.is_regressor:
            return check_real_targets(y, name, n)
        y = check_labels(y, name, n)
        classes = self.classes_
        idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        bad = classes[idx] != y
        if np.any(bad):
            raise ValueError(
                f"{name} contains labels {np.unique(y[bad])[:5].tolist()} that the model "
                f"does not predict; known classes: {classes.tolist()}."
            )
        return idx.astype(np.int64)

    def training_data(self, X, y, sample_weight=None, *, name="X"):
        X = self.check_X(X, name)
        if y is None and isinstance(X, DatasetRows):
            y = X.labels()
        y_idx = self.encode(y, name="y" if name == "X" else f"y for {name}", n=X.shape[0])
        w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight)
        if np.all(w == 0):
            raise ValueError("sample_weight: every training sample has zero weight.")
        y_t = torch.from_numpy(y_idx)
        return TrainingData(X, (y_t.to(self.dtype) if self.is_regressor else y_t).to(X.device),
                            torch.as_tensor(w, dtype=self.dtype, device=X.device))

    def _rows(self, X, y, start, stop):
        return (X[start:stop].to(self.device, non_blocking=True),
                y[start:stop].to(self.device, non_blocking=True))

    # ------------------------------------------------------------------ forward
    def _member(self, theta):
        m = as_member(theta, self.theta)
        if m.theta.device != self.device or m.theta.dtype != self.dtype:
            m = Member(m.theta.to(self.device, self.dtype), m.fixed, m.dropout_seed, m.lr)
        return m

    @contextlib.contextmanager
    def _mode(self, member, offset=0):
        """Eval mode; for an activation member its dropout layers on, seeded per chunk."""
        if member.dropout_seed is None:
            yield
            return
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(member.dropout_seed + 1_000_003 * offset)
            for m in self._dropouts:
                m.train()
            try:
                yield
            finally:
                for m in self._dropouts:
                    m.eval()

    def _output(self, member, theta, x):
        state = dict(member.fixed) if member.fixed else {}
        state.update(self.space.unflatten(theta))
        return self.spec.output(forward(self.module, x, state))

    def _losses(self, member, x, y):
        """theta -> per-sample training losses of the rows (a function to transform)."""
        return lambda theta: self.spec.loss(self._output(member, theta, x), y)

    def _phi(self, terms, member, theta, x, y):
        out = self._output(member, theta, x)
        if terms.kind == "loss":
            return self.spec.loss(out, y)
        if terms.kind == "prediction" and self.is_regressor:
            return out
        if self.is_regressor:
            raise ValueError(f"A regressor has no objective term of kind {terms.kind!r}; "
                             "expected 'loss' or 'prediction'.")
        return self.spec.proba(out)[:, terms.positive]

    def predict_proba(self, X, theta=None):
        """Class probabilities (n, K) at ``theta`` (default: the fitted parameters)."""
        if self.is_regressor:
            raise TypeError("A regressor has no class probabilities; objectives built on "
                            "predicted probabilities (kind='proba') do not apply.")
        return self._forward(X, theta, self.spec.proba)

    def predict(self, X, theta=None):
        """A regressor's predictions (n,) at ``theta`` (default: the fitted parameters)."""
        return self._forward(X, theta, lambda out: out)

    def _forward(self, X, theta, head):
        X = X if torch.is_tensor(X) or isinstance(X, DictRows) else self.check_X(X, "X")
        member = self._member(theta)
        with torch.no_grad():
            parts = [head(self._output(member, member.theta, X[s:s + CHUNK].to(self.device)))
                     for s in range(0, X.shape[0], CHUNK)]
        return torch.cat(parts).cpu().numpy()

    # ------------------------------------------------------------------ objective
    def _terms_tensors(self, terms):
        X = terms.X if torch.is_tensor(terms.X) else self.check_X(terms.X, "X_val")
        y = torch.as_tensor(np.asarray(terms.y),
                            dtype=self.dtype if self.is_regressor else torch.int64)
        coef = torch.as_tensor(np.asarray(terms.coef), dtype=self.dtype)
        return X, y, coef

    def objective_value(self, terms, theta=None):
        member = self._member(theta)
        X, y, coef = self._terms_tensors(terms)
        total = torch.zeros((), dtype=self.dtype, device=self.device)
        with torch.no_grad():
            for s in range(0, X.shape[0], CHUNK):
                x, yy = self._rows(X, y, s, s + CHUNK)
                with self._mode(member, s):
                    phi = self._phi(terms, member, member.theta, x, yy)
                total += (coef[s:s + CHUNK].to(self.device) * phi).sum()
        return float(total)

    def objective_gradient(self, terms, theta=None):
        """grad_theta J (flat tensor on the device) at ``theta`` / the member."""
        member = self._member(theta)
        X, y, coef = self._terms_tensors(terms)
        th = member.theta.detach().clone().requires_grad_(True)
        total = torch.zeros_like(th)
        for s in range(0, X.shape[0], CHUNK):
            x, yy = self._rows(X, y, s, s + CHUNK)
            with torch.enable_grad(), self._mode(member, s):
                phi = self._phi(terms, member, th, x, yy)
                (g,) = torch.autograd.grad((coef[s:s + CHUNK].to(self.device) * phi).sum(), th)
            total += g
        return total.detach()

    def objective_gradients(self, terms, theta=None):
        """(P, m): each row's ``coef_j * grad phi_j``, ``vmap`` over ``grad`` by chunks.

        Activation-dropout members take the rows one call at a time (each
        row's mask is then that of a one-row objective).
        """
        member = self._member(theta)
        if member.dropout_seed is not None:
            return super().objective_gradients(terms, theta)
        X, y, coef = self._terms_tensors(terms)

        def one(th, x, yy, c):
            return c * self._phi(terms, member, th, x[None], yy[None])[0]

        per_row = vmap(grad(one), in_dims=(None, 0, 0, 0))
        parts = []
        for s in range(0, X.shape[0], CHUNK):
            x, yy = self._rows(X, y, s, s + CHUNK)
            parts.append(per_row(member.theta, x, yy, coef[s:s + CHUNK].to(self.device)))
        return torch.cat(parts).T

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
        """Mean-form Hessian (P x P numpy float64): ``sum_s c_s hess l_s + diag(decay)``.

        Built from stacked forward-over-reverse Hessian-vector products, a block
        of unit vectors at a time (``vmap``), so memory stays bounded.
        """
        member = self._member(theta)
        X, y, c = self._weighted_rows(train, indices, sample_weights)
        P = self.n_params
        cols = min(P, 512)
        rows = max(1, min(batch_size, HESSIAN_BLOCK // cols))
        H = torch.zeros((P, P), dtype=torch.float64, device=self.device)
        for c0 in range(0, P, cols):
            k = min(cols, P - c0)
            E = torch.zeros((k, P), dtype=self.dtype, device=self.device)
            E[torch.arange(k), c0 + torch.arange(k)] = 1.0
            for s in range(0, X.shape[0], rows):
                x, yy = self._rows(X, y, s, s + rows)
                g = grad(self._weighted_loss(member, x, yy, c[s:s + rows].to(self.device)))
                H[c0:c0 + k] += vmap(lambda e: jvp(g, (member.theta,), (e,))[1])(E).double()
        H = 0.5 * (H + H.T) + torch.diag(self.weight_decay.double())
        return H.cpu().numpy()

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

    def regulariser_hessian_mean(self, train):
        """The weight decay's diagonal (the loss is a mean already, whatever ``train``)."""
        return self.weight_decay

    def with_parameters(self, estimator, theta):
        """A deep copy of ``estimator`` (net or module) whose weights are ``theta``."""
        new = copy.deepcopy(estimator)
        if self.spec.source == "skorch":
            module = new.module_
        else:
            module = new[0] if isinstance(new, tuple) else new
        module = getattr(module, "_orig_mod", module)
        params = dict(module.named_parameters())
        values = self.space.unflatten(torch.as_tensor(theta))
        with torch.no_grad():
            for name, value in values.items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))
        return new

    def null_directions(self):
        """Nets: none known (a flat direction shows up as damping instead)."""
        return np.zeros((self.n_params, 0))

    # ------------------------------------------------------------------ samplers
    def _embed_and_proba(self, X):
        """Input of the last layer and class probabilities, chunked (numpy)."""
        X = X if torch.is_tensor(X) or isinstance(X, DatasetRows) else self.check_X(X, "X")
        layer = self.module.get_submodule(last_layer(self.module))
        seen = []
        hook = layer.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
        embs, probas = [], []
        try:
            with torch.no_grad():
                for s in range(0, X.shape[0], CHUNK):
                    seen.clear()
                    out = self.spec.output(forward(self.module, X[s:s + CHUNK].to(self.device)))
                    embs.append(seen[-1].reshape(seen[-1].shape[0], -1).double().cpu())
                    probas.append(self.spec.proba(out).double().cpu())
        finally:
            hook.remove()
        return torch.cat(embs).numpy(), torch.cat(probas).numpy()

    def embedding(self, X):
        """Penultimate-layer representation (the input of the last layer), (n, m)."""
        return self._embed_and_proba(X)[0]

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

    # ------------------------------------------------------------------ members
    def perturbed_parameters(self, perturbation, level, rng):
        """A perturbed member: "dropout" / "gaussian" on theta, or "activation" dropout."""
        P = self.n_params
        if perturbation == "dropout":
            keep = torch.from_numpy(rng.random(P) >= level).to(self.device, self.dtype)
            return self.theta * keep / (1.0 - level)
        if perturbation == "gaussian":
            noise = torch.from_numpy(rng.normal(0.0, level, P))
            return self.theta + noise.to(self.device, self.dtype)
        if perturbation == "activation":
            if not self._dropouts:
                raise ValueError(
                    "perturbation='activation' switches on the module's own dropout layers, "
                    "but this module has none; use 'dropout', 'gaussian' or "
                    "members='checkpoints'."
                )
            return Member(self.theta, None, int(rng.integers(2**31 - 1)))
        raise ValueError(
            f"perturbation={perturbation!r}: expected 'dropout', 'gaussian' or 'activation'."
        )

    def checkpoint_members(self, checkpoints=None):
        """Members from training checkpoints: a list, or the skorch net's Snapshots callback.

        ``checkpoints``: state dicts (``module.state_dict()``), modules, or
        :class:`~skinfluence.callbacks.Snapshot` objects (which carry the
        learning rate). ``None``: the snapshots recorded by the net's
        :class:`~skinfluence.callbacks.Snapshots` callback.
        """
        if checkpoints is None:
            cb = self.spec.snapshots
            if cb is None:
                raise ValueError(
                    "IPEnsemble(members='checkpoints') needs checkpoints: add the "
                    "skinfluence.callbacks.Snapshots callback to the skorch net "
                    "(NeuralNetClassifier(..., callbacks=[Snapshots()])) or pass "
                    "IPEnsemble(checkpoints=[state_dict, ...])."
                )
            checkpoints = getattr(cb, "snapshots_", None) or []
            if not checkpoints:
                raise ValueError("The net's Snapshots callback holds no snapshots: fit the net.")
        elif isinstance(checkpoints, (Mapping, nn.Module)) or not hasattr(checkpoints, "__len__"):
            raise TypeError("checkpoints must be a list of state dicts, modules or Snapshots.")
        elif len(checkpoints) == 0:
            raise ValueError("checkpoints is empty; give at least one state dict.")
        members = []
        for k, ck in enumerate(checkpoints):
            state, lr = (ck.state, ck.lr) if hasattr(ck, "state") else (ck, None)
            members.append(self.space.member_from_state(state, self.module, self.device,
                                                        self.dtype, lr,
                                                        where=f"checkpoints[{k}]"))
        return members

    # ------------------------------------------------------------------ scoring pass
    def score_pass(self, train, thetas, directions, *, batch_size, progress=None):
        """All members' scores ``w_i <v_m, grad l_i(theta_m)>``: (n, M) tensor on the device.

        One ``torch.func.jvp`` per member per chunk; nothing leaves the device
        until the caller converts the result. A direction may be a (P, B)
        block: its B tangents go through one batched JVP (``vmap`` over
        ``jvp``, at most ``HESSIAN_BLOCK`` rows x tangents at a time) and the
        scores are (n, M, B).
        """
        members = [self._member(t) for t in thetas]
        vs = [as_vector(v, self.theta) for v in directions]
        w = train.relative_weight
        shape = (train.n, len(members)) + tuple(vs[0].shape[1:])
        scores = torch.empty(shape, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            for s in range(0, train.n, batch_size):
                x, y = self._rows(train.X, train.y, s, s + batch_size)
                wc = w[s:s + batch_size].to(self.device, non_blocking=True)
                for m, (member, v) in enumerate(zip(members, vs)):
                    with self._mode(member, s):
                        losses = self._losses(member, x, y)
                        tangent = _directional(losses, member.theta, v, x.shape[0],
                                               member.dropout_seed is not None)
                    scores[s:s + batch_size, m] = (wc if v.ndim == 1 else wc[:, None]) * tangent
                if progress is not None:
                    progress.update(x.shape[0])
        return scores


def _directional(f, theta, v, n_rows, random=False):
    """Derivative of ``f`` (a vector of n values) along ``v`` (P,) or each column of v (P, B).

    A block goes through ``vmap`` over ``jvp`` in groups of at most
    ``HESSIAN_BLOCK / n_rows`` columns (bounded memory): (n,) or (n, B).
    ``random``: dropout is on (activation members), one mask for every column
    (vmap's randomness="same", measured 13x slower, so only then).
    """
    if v.ndim == 1:
        return jvp(f, (theta,), (v,))[1]
    group = max(1, HESSIAN_BLOCK // max(1, n_rows))
    one = (lambda t: jvp(f, (theta,), (t,))[1])
    batched = vmap(one, randomness="same" if random else "error")
    parts = [batched(v[:, b:b + group].T)
             for b in range(0, v.shape[1], group)]
    return torch.cat(parts).T


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
