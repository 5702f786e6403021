"""What a network *is* for influence: module, per-sample loss, probabilities, decay.

:func:`net_spec` reads a fitted skorch net, a ``(module, loss)`` pair or a bare
module (with ``loss=``) into a :class:`NetSpec`. It is the only place that
knows how each supported criterion turns the module's output into the loss the
net trained on, so that every influence score differentiates exactly that loss:

==========================================  =====================================
skorch ``NeuralNetClassifier`` + NLLLoss    module outputs probabilities;
(skorch's default)                          ``l = NLL(log(p + eps), y)`` (skorch's
                                            ``get_loss``)
``CrossEntropyLoss`` (skorch or pair)       module outputs logits; ``CE(f, y)``
``BCEWithLogitsLoss`` (skorch binary or     one logit, float targets;
pair)                                       ``BCEWithLogits(f.reshape(-1), y)``
``BCELoss`` (pair or skorch binary)         one probability, float targets
``NLLLoss`` in a pair                       module outputs log-probabilities (torch)
``MSELoss`` (skorch ``NeuralNetRegressor``  one real output, float targets;
or pair)                                    ``l = (f.reshape(-1) - y)^2`` (a regressor)
==========================================  =====================================

The criterion is deep-copied with ``reduction="none"``, so its ``weight``,
``pos_weight``, ``label_smoothing`` and ``ignore_index`` are honoured.
"""
import copy
from dataclasses import dataclass
import numbers

import numpy as np
import torch
from torch import nn

SUPPORTED_CRITERIA = ("NLLLoss", "CrossEntropyLoss", "BCEWithLogitsLoss", "BCELoss", "MSELoss")


@dataclass
class NetSpec:
    module: nn.Module  # private deep copy, eval mode, on the scoring device
    criterion: nn.Module  # deep copy with reduction="none"
    kind: str  # "nll_proba", "nll_logproba", "cross_entropy", "bce_logits", "bce_proba",
    # or "squared_error" (a regressor)
    predict_nonlinearity: object  # output -> (n, K) probabilities
    classes: object  # ndarray or None (inferred from the output width)
    weight_decay: dict  # parameter name -> L2 coefficient of the training objective
    source: str  # "skorch" or "module"
    snapshots: object = None  # the skorch net's Snapshots callback, if any

    @property
    def binary_output(self):
        return self.kind.startswith("bce")

    @property
    def regression(self):
        return self.kind == "squared_error"

    def output(self, out):
        """The module's first output, reshaped as skorch's binary net does."""
        if isinstance(out, (tuple, list)):
            out = out[0]
        if self.binary_output or self.regression:
            if out.dim() > 2 or (out.dim() == 2 and out.shape[1] != 1):
                raise ValueError(
                    f"A {type(self.criterion).__name__} model must output shape (n,) or "
                    f"(n, 1); got {tuple(out.shape)}."
                )
            return out.reshape(-1)
        return out

    def loss(self, out, y_idx):
        """Per-sample training loss of the (reshaped) output for class indices y."""
        if self.kind == "nll_proba":
            eps = torch.finfo(out.dtype).eps
            return self.criterion(torch.log(out + eps), y_idx)
        if self.binary_output or self.regression:  # float targets
            return self.criterion(out, y_idx.to(out.dtype))
        return self.criterion(out, y_idx)

    def proba(self, out):
        """Class probabilities (n, K), as the estimator's ``predict_proba`` gives them."""
        return self.predict_nonlinearity(out)

    def natural_output(self, out):
        """The (reshaped) output as its loss's natural parameter: logits, or the prediction.

        The loss is convex in it, so its Hessian there is the positive
        semi-definite middle of the Gauss-Newton matrix. A module that outputs
        probabilities or log-probabilities is taken back to logits (``log p``
        is a logit vector of ``p``; ``log p - log(1 - p)`` of a binary ``p``):
        through the probabilities themselves the loss is not convex, and through
        log-probabilities with ``NLLLoss`` it is linear (no curvature at all).
        """
        eps = torch.finfo(out.dtype).eps
        if self.kind == "nll_proba":
            return torch.log(out + eps)
        if self.kind == "bce_proba":
            return torch.log(out + eps) - torch.log1p(eps - out)
        return out

    def logit_hessian_scale(self, y_idx):
        """Each row's factor (float64, (n,)) on its loss's Hessian in the logits: the
        criterion's class weight of its label (0 for ``ignore_index``; mixed by
        ``label_smoothing`` as the loss mixes them), times ``pos_weight`` for a positive
        row of ``BCEWithLogitsLoss`` and any ``weight`` of a binary criterion; 1 without
        them."""
        crit, n = self.criterion, y_idx.shape[0]
        one = torch.ones(n, dtype=torch.float64, device=y_idx.device)
        if self.binary_output:
            scale = one
            if getattr(crit, "pos_weight", None) is not None:
                y = y_idx.double()
                scale = crit.pos_weight.double().reshape(-1)[0] * y + (1 - y)
            if crit.weight is not None:
                scale = scale * crit.weight.double().reshape(-1).expand(n)
            return scale
        if self.regression:
            return one
        ignored = y_idx == crit.ignore_index
        labels = torch.where(ignored, 0, y_idx)
        if crit.weight is None:
            scale = one
        else:
            w = crit.weight.double()
            smoothing = getattr(crit, "label_smoothing", 0.0)
            scale = (1 - smoothing) * w[labels] + smoothing * w.mean()
        return torch.where(ignored, 0.0, scale)

    def natural_loss(self, z, y_idx):
        """Per-sample training loss as a function of :meth:`natural_output` (the same
        value at the net's output; class weights kept)."""
        if self.kind in ("nll_proba", "nll_logproba"):
            crit = self.criterion
            return nn.functional.cross_entropy(z, y_idx, weight=crit.weight,
                                               ignore_index=crit.ignore_index, reduction="none")
        if self.kind == "bce_proba":
            return nn.functional.binary_cross_entropy_with_logits(
                z, y_idx.to(z.dtype), weight=self.criterion.weight, reduction="none")
        return self.loss(z, y_idx)


def _sigmoid_2d(f):
    p = torch.sigmoid(f)
    return torch.stack((1 - p, p), 1)


def _proba_2d(p):
    return torch.stack((1 - p, p), 1)


def _softmax(f):
    return torch.softmax(f, dim=-1)


_PAIR_NONLINEARITY = {
    "cross_entropy": _softmax,
    "nll_logproba": torch.exp,
    "bce_logits": _sigmoid_2d,
    "bce_proba": _proba_2d,
    "squared_error": lambda f: f.reshape(-1, 1),  # the prediction, for the embedding samplers
}


def _kind(criterion, *, skorch_classifier):
    crit = getattr(criterion, "_orig_mod", criterion)
    if isinstance(crit, nn.CrossEntropyLoss):
        return "cross_entropy"
    if isinstance(crit, nn.NLLLoss):
        return "nll_proba" if skorch_classifier else "nll_logproba"
    if isinstance(crit, nn.BCEWithLogitsLoss):
        return "bce_logits"
    if isinstance(crit, nn.BCELoss):
        return "bce_proba"
    if isinstance(crit, nn.MSELoss):
        return "squared_error"
    raise TypeError(
        f"Unsupported criterion {type(crit).__name__}; supported: "
        f"{', '.join(SUPPORTED_CRITERIA)} (losses with a per-sample form)."
    )


def _private_criterion(criterion):
    crit = copy.deepcopy(getattr(criterion, "_orig_mod", criterion))
    crit.reduction = "none"
    return crit


def _private_module(module, device):
    module = getattr(module, "_orig_mod", module)  # unwrap torch.compile
    return copy.deepcopy(module).to(device).eval()


def resolve_device(device, module):
    """``"auto"`` -> the device of the module's parameters; CUDA checked, never assumed."""
    if device in (None, "auto"):
        first = next(iter(module.parameters()), None)
        return first.device if first is not None else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device; give 'auto', 'cpu', "
                         f"'cuda', 'cuda:0', ... ({exc}).") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available here; "
            "use device='cpu' or 'auto'."
        )
    return dev


def optimizer_weight_decay(optimizer, module):
    """``{name: weight_decay}`` of every parameter the optimizer updates with decay > 0.

    Coupled decay (SGD, Adam, RMSprop, ...) is exactly the gradient of
    ``wd / 2 * ||theta||^2``; decoupled decay (AdamW) is not the gradient of any
    objective, and is still counted as that L2 term (the nearest one).
    """
    if optimizer is None:
        return {}
    names = {id(p): name for name, p in module.named_parameters()}
    decay = {}
    for group in optimizer.param_groups:
        wd = float(group.get("weight_decay", 0.0) or 0.0)
        for p in group["params"]:
            p = p[1] if isinstance(p, tuple) else p
            if wd > 0 and id(p) in names:
                decay[names[id(p)]] = wd
    return decay


def _check_decay_value(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")


def _check_weight_decay(weight_decay, module):
    if weight_decay is None:
        return None
    names = [n for n, _ in module.named_parameters()]
    if isinstance(weight_decay, numbers.Real):
        _check_decay_value(weight_decay, "weight_decay")
        return {n: float(weight_decay) for n in names} if weight_decay > 0 else {}
    if isinstance(weight_decay, dict):
        for key, value in weight_decay.items():
            _check_decay_value(value, f"weight_decay[{key!r}]")
        unknown = sorted(set(weight_decay) - set(names))
        if unknown:
            raise ValueError(
                f"weight_decay names {unknown} are not parameters of the module; "
                f"known: {names}."
            )
        return {k: float(v) for k, v in weight_decay.items() if v}
    raise TypeError(
        "weight_decay must be None, a number or a dict {parameter name: value}, "
        f"got {type(weight_decay).__name__}."
    )


def _is_skorch_net(estimator):
    return type(estimator).__module__.startswith("skorch") or hasattr(estimator, "criterion_")


def net_spec(estimator, device, *, loss=None, weight_decay=None, classes=None):
    """Read ``estimator`` into a :class:`NetSpec` on ``device`` (never modifying it)."""
    if _is_skorch_net(estimator):
        return _skorch_spec(estimator, device, loss, weight_decay, classes)
    if isinstance(estimator, tuple):
        if len(estimator) != 2 or not isinstance(estimator[0], nn.Module):
            raise TypeError(
                "A torch model given as a tuple must be (module, loss), e.g. "
                "(net, torch.nn.CrossEntropyLoss())."
            )
        if loss is not None:
            raise ValueError("loss= given twice: in the (module, loss) tuple and as loss=.")
        module, loss = estimator
    elif isinstance(estimator, nn.Module):
        module = estimator
        if loss is None:
            raise ValueError(
                "loss is required for a bare torch.nn.Module: pass loss=torch.nn."
                "CrossEntropyLoss() (or the criterion it was trained with), or give "
                "(module, loss)."
            )
    else:  # pragma: no cover - make_adapter dispatches only torch models here
        raise TypeError(f"Not a torch model: {type(estimator).__name__}.")
    if isinstance(loss, type):
        loss = loss()
    if not isinstance(loss, nn.Module):
        raise TypeError(
            f"loss must be a torch loss module such as torch.nn.CrossEntropyLoss(), "
            f"got {type(loss).__name__}."
        )
    kind = _kind(loss, skorch_classifier=False)
    device = resolve_device(device, module)
    decay = _check_weight_decay(weight_decay, module) or {}
    return NetSpec(_private_module(module, device), _private_criterion(loss).to(device), kind,
                   _PAIR_NONLINEARITY[kind], _check_classes(classes, kind), decay, "module")


def _skorch_spec(net, device, loss, weight_decay, classes):
    if loss is not None:
        raise ValueError("loss= is not used for a skorch net: its own criterion_ is.")
    if not getattr(net, "initialized_", False) or not hasattr(net, "module_"):
        raise ValueError(
            f"The {type(net).__name__} is not fitted (no module_); fit it before scoring."
        )
    if not hasattr(net, "criterion_"):
        raise TypeError(
            f"{type(net).__name__} has no criterion_; supported skorch nets: "
            "NeuralNetClassifier, NeuralNetBinaryClassifier (one criterion)."
        )
    from skorch.classifier import NeuralNetClassifier

    kind = _kind(net.criterion_, skorch_classifier=isinstance(net, NeuralNetClassifier))
    device = resolve_device(device, net.module_)
    decay = _check_weight_decay(weight_decay, net.module_)
    if decay is None:
        decay = optimizer_weight_decay(getattr(net, "optimizer_", None), net.module_)
    if classes is None:
        classes = np.asarray(net.classes_) if hasattr(net, "classes_") else None
    nonlin = net._get_predict_nonlinearity()
    from ..callbacks import Snapshots

    return NetSpec(_private_module(net.module_, device),
                   _private_criterion(net.criterion_).to(device), kind, nonlin,
                   _check_classes(classes, kind), decay, "skorch", Snapshots.find(net))


def _check_classes(classes, kind):
    if kind == "squared_error":
        return None
    if kind.startswith("bce"):
        if classes is not None and len(classes) != 2:
            raise ValueError(f"A one-output binary model has 2 classes, got classes={classes}.")
        return np.array([0, 1]) if classes is None else np.asarray(classes)
    return None if classes is None else np.asarray(classes)
