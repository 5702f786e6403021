"""Adapter for ``torch.nn.Module`` (with a loss) and fitted skorch classifiers.

The network is read into a private, eval-mode copy (the caller's module or net
is never touched); the chosen parameters are one flat vector ``theta`` and
every forward pass is ``torch.func.functional_call`` at a parameter set.

- Scoring pass: ``score_i = w_i <v, grad l_i(theta)>`` is the directional
  derivative of the per-sample-loss vector along ``v``, so one forward-mode
  product (``torch.func.jvp``) per chunk of ``batch_size`` rows gives a whole
  chunk of scores, on the model's device, with no per-sample gradient matrix
  and no host round-trip inside the loop (measured ~3x a forward pass). A
  block of many directions (``influence_matrix``: one per test row) costs one
  JVP each; from ``ROW_GRADIENT_MIN_DIRECTIONS`` of them on (more for an MLP,
  see ``weight_reuse``), the chunk's per-row gradients (``vmap`` over
  ``grad``, bounded groups of rows) times the block are cheaper
  (``benchmarks/models/RESULTS_direction_block.md``).
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
from torch.func import grad, vmap

from ..utils._validation import check_real_targets, class_indices, is_sparse
from .base import ModelAdapter, TrainingData
from ._torch_dict import DictRows, forward, mappable, one_row_batch
from ._torch_rows import DatasetRows, is_torch_rows
from ._torch_params import Member, ParamSpace, as_member, as_vector, last_layer, \
    select_parameters
from ._torch_spec import net_spec
from ._torch_attack import TorchAttackMixin
from ._torch_curvature import ROW_GRADIENT_MIN_DIRECTIONS, ROW_GRADIENT_MIN_WORK, \
    TorchCurvatureMixin, _directional, row_gradients_times
from ._torch_rows import CHUNK
from ._rows import check_forward_keys

__all__ = ["TorchModelAdapter", "make_torch_adapter"]

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


class TorchModelAdapter(TorchCurvatureMixin, TorchAttackMixin, ModelAdapter):
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
        self._last_objective = None  # (terms, J) from the last gradient pass at theta
        self._weight_reuse = None  # see weight_reuse
        #: torch.vmap has no batching rule for recurrent kernels: their rows and
        #: directions go one at a time
        self._recurrent = any(isinstance(m, nn.RNNBase) for m in self.module.modules())
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
                f"{name} must have shape (n_samples, ...) with n_samples >= 1 and at least "
                f"{min_ndim} dimension{'s' if min_ndim > 1 else ''}, got {tuple(t.shape)}"
                + (" (this network was fitted on a dict of arrays: give one)."
                   if isinstance(getattr(self, "_feature_shape", None), dict) else ".")
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
        check_forward_keys(self.module, tensors, name)
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
        return class_indices(y, self.classes_, name, n).astype(np.int64)

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
        row_losses = self._row_losses(member)
        return lambda theta: row_losses(theta, x, y)

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
        seen = self._last_objective
        if self._at_fit(theta) and seen is not None and seen[0] is terms:
            return seen[1]  # the gradient pass already summed it: no second forward
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

    def _at_fit(self, theta):
        """The fitted parameters: None, or the adapter's own vector (ensembles pass it)."""
        return theta is None or theta is self.theta

    def objective_gradient(self, terms, theta=None):
        """grad_theta J (flat tensor on the device) at ``theta`` / the member."""
        member = self._member(theta)
        X, y, coef = self._terms_tensors(terms)
        th = member.theta.detach().clone().requires_grad_(True)
        total = torch.zeros_like(th)
        value = torch.zeros((), dtype=self.dtype, device=self.device)
        for s in range(0, X.shape[0], CHUNK):
            x, yy = self._rows(X, y, s, s + CHUNK)
            with torch.enable_grad(), self._mode(member, s):
                phi = self._phi(terms, member, th, x, yy)
                part = (coef[s:s + CHUNK].to(self.device) * phi).sum()
                (g,) = torch.autograd.grad(part, th)
            total += g
            value += part.detach()
        if self._at_fit(theta):
            self._last_objective = (terms, float(value))
        return total.detach()

    def objective_gradients(self, terms, theta=None):
        """(P, m): each row's ``coef_j * grad phi_j``, ``vmap`` over ``grad`` by chunks.

        Activation-dropout members take the rows one call at a time (each
        row's mask is then that of a one-row objective).
        """
        member = self._member(theta)
        if member.dropout_seed is not None or self._recurrent:
            return super().objective_gradients(terms, theta)
        X, y, coef = self._terms_tensors(terms)

        def one(th, x, yy, c):
            return c * self._phi(terms, member, th, one_row_batch(x), yy[None])[0]

        per_row = vmap(grad(one), in_dims=(None, 0, 0, 0))
        parts = []
        for s in range(0, X.shape[0], CHUNK):
            x, yy = self._rows(X, y, s, s + CHUNK)
            parts.append(per_row(member.theta, mappable(x), yy,
                                 coef[s:s + CHUNK].to(self.device)))
        return torch.cat(parts).T

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
                    if self._by_row_gradients(member, v, x):
                        tangent = row_gradients_times(self._row_losses(member), member.theta,
                                                      x, y, v)
                    else:
                        with self._mode(member, s):
                            tangent = _directional(self._losses(member, x, y), member.theta, v,
                                                   x.shape[0], member.dropout_seed is not None,
                                                   batched=not self._recurrent)
                    scores[s:s + batch_size, m] = (wc if v.ndim == 1 else wc[:, None]) * tangent
                if progress is not None:
                    progress.update(x.shape[0])
        return scores

    def explain(self, exc):
        """A clearer error for torch's "forward AD ... not implemented": which layers of
        the network torch cannot push a tangent through, and the way around them."""
        if not isinstance(exc, NotImplementedError) or "forward AD" not in str(exc):
            return exc
        layers = sorted({f"{type(m).__name__} ({name})" for name, m in
                         self.module.named_modules() if isinstance(m, nn.RNNBase)
                         and any(o == name or o.startswith(name + ".")
                                 for o in self.space.owners)})
        what = f"its {', '.join(layers)}" if layers else "one of its layers"
        first = str(exc).splitlines()[0]
        return NotImplementedError(
            f"The network cannot be scored with these parameters: torch has no forward-mode "
            f"derivative for {what} ({first}). Score the parameters after them, e.g. "
            "params='last_layer' or a list of names."
        )

    def _by_row_gradients(self, member, v, x):
        """Many directions at once: per-row gradients times the block beat one JVP each
        (the more, the more the forward pass reuses each weight; see
        ``ROW_GRADIENT_MIN_WORK``). Activation-dropout members keep the JVPs (one mask
        per chunk)."""
        if v.ndim != 2 or v.shape[1] < ROW_GRADIENT_MIN_DIRECTIONS \
                or member.dropout_seed is not None or self._recurrent:
            return False
        return v.shape[1] * self.weight_reuse(x) >= ROW_GRADIENT_MIN_WORK

    def weight_reuse(self, x):
        """Multiply-adds of one row's forward pass in the layers that own the chosen
        parameters, per chosen parameter (torch's flop counter on the first of the rows
        ``x``, once): about 1 for an MLP, more for a convolution, which applies each
        weight at every position; a frozen body's work does not count (``params=
        "last_layer"``: the JVPs then cost little more than one forward pass)."""
        if self._weight_reuse is None:
            from torch.utils.flop_counter import FlopCounterMode

            member = self._member(None)
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                self._output(member, member.theta, x[0:1])
            per_module = counter.get_flop_counts()  # keyed "<top class>.<path>"
            top = type(self.module).__name__
            flops = sum(sum(per_module.get(f"{top}.{o}" if o else top, {}).values())
                        for o in self.space.owners)
            self._weight_reuse = flops / (2 * self.n_params)
        return self._weight_reuse

    def _row_losses(self, member):
        """(theta, x, y) -> per-row training losses, for ``vmap`` over rows."""
        return lambda theta, x, y: self.spec.loss(self._output(member, theta, x), y)
