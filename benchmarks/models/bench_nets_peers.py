"""K-FAC / EK-FAC influence on small networks: skinfluence beside kronfluence and dattri.

Data and training as in ``bench_cnn_flips.py``: digits (pixels / 16, float32),
a stratified split per seed of 1,000 training rows, 20% of whose labels are
flipped to a uniformly drawn other digit, and 300 clean validation rows, used
as the test rows. Three skorch ``NeuralNetClassifier`` networks per seed
(cross-entropy, Adam lr 0.003, weight decay 1e-3, 10 epochs, batch 64,
``torch.manual_seed(seed)`` before the fit):

- ``cnn``: the CNN of ``bench_cnn_flips.py`` (conv 3x3 with 8 channels, batch
  norm, ReLU, max-pool, conv 3x3 with 16, batch norm, ReLU, linear to 10);
- ``mlp``: 64 -> 64 -> 64 -> 10, tanh, Linear layers only;
- ``conv1d``: the 64 pixels as a 1 x 64 sequence: Conv1d(1, 8, 5), ReLU,
  MaxPool1d(2), Conv1d(8, 16, 5), ReLU, AdaptiveAvgPool1d(8), linear to 10.

Every method computes the full (300 test rows x 1,000 training rows) influence
matrix of the same trained network, in one process, interleaved, timed by wall
clock from nothing cached (factors, per-row gradients, solves and scoring all
included). Reported per network and seed: the flip AUC (ROC AUC of
``-M.sum(axis=0)`` against the flipped mask), the LDS of
``skinfluence.metrics.linear_datamodeling_score`` with every method's matrix in
one dict (so all share the same half-size refits; torch seeded before them),
the time and the time over kronfluence's EK-FAC on the same net and seed, and
the mean per-test-row Spearman correlation with skinfluence's ``ip`` matrix
(a sign check: a positive value means the same orientation).

Methods
-------
skinfluence (the package of this checkout): ``influence_matrix`` with
``method=KFAC()`` (damping 1e-3), ``KFAC(eigen_correction=True)`` and ``"ip"``,
``weight_decay=1e-3`` (the Adam weight decay, added to the Hessian of the mean
loss). It scores a deep copy of the fitted module in eval mode, so batch norm
uses its running statistics. K-FAC factors the Linear / Conv1d / Conv2d layers
with the exact Gauss-Newton factors (the expectation over the model's own
label distribution, no sampling); the batch-norm weights and biases are named
in a UserWarning (silenced here) and preconditioned by a scaled identity at the
factored layers' mean curvature.

kronfluence: ``prepare_model`` on a deep copy of ``net.module_`` (it calls
``model.eval()``: running statistics again), ``Analyzer(cpu=True)`` with a
temporary output directory, ``fit_all_factors`` with
``FactorArguments(strategy="ekfac")`` or ``"kfac"`` and all else default (true
Fisher: labels sampled from the model, ``use_empirical_fisher=False``; torch
seeded before each run), ``compute_pairwise_scores`` with default
``ScoreArguments`` (``damping_factor=1e-08``; ``None`` would be its heuristic
0.1 x mean eigenvalue). The batch sizes are given (1,000 training rows, 300
query rows per batch) so that its automatic batch-size search, a trial pass on
the CPU, is not timed. Its Task: training loss the summed cross-entropy on the
(noisy) training labels, sampled labels when ``sample=True``; measurement the
cross-entropy of the test row. kronfluence tracks ``nn.Linear`` and
``nn.Conv2d`` only: batch-norm parameters take no part in its scores, and on
``conv1d`` the two Conv1d layers are skipped silently, leaving the head alone.
So on ``conv1d`` it is also run on a twin of the same trained network with
each Conv1d rewritten as a Conv2d of kernel (1, 5) (weights copied; the same
function, checked to 1e-5), rows labelled "(Conv2d twin)". It has no weight
decay option.

dattri: ``AttributionTask`` on a deep copy of ``net.module_`` with its
``state_dict`` as the checkpoint (its loader calls ``model.eval()``), the
training loader one batch of all 1,000 rows, the test loader one batch of 300.
Loss: the mean cross-entropy (``IFAttributor*``). ``IFAttributorEKFAC`` with
default ``module_name`` (every ``nn.Linear``: on ``cnn`` and ``conv1d`` only the
head; its hooks do not handle convolutions) and empirical Fisher (the training
labels); ``IFAttributorCG`` (10 iterations, tol 1e-7) and
``IFAttributorArnoldi`` (proj_dim 100, max_iter 100) over all parameters,
batch-norm weights and biases included. dattri has no weight decay option;
it enters as the L2 term each attributor has: ``damping`` (EK-FAC) and
``regularization`` (CG, Arnoldi) = 1e-3 instead of their default 0.0.
``TRAKAttributor`` (one checkpoint, default projection: dimension 512, seeded
with the run's seed, regularization 0.0) with TRAK's own output function as in dattri's examples,
the log-odds of the given label ``log p - log(1 - p)`` (derived from the same
cross-entropy), for the training and the test rows, and ``correct_probability_func``
``p``. dattri's output is (n_train, n_test): transposed. Left out by default
(``TOO_SLOW``; ``--force`` runs them): ``IFAttributorCG`` on ``cnn`` (398 s for
seed 0 in a trial run) and ``conv1d`` (220 s), over the 3 minutes per seed and
net allowed a peer here. ``IFAttributorArnoldi`` returns NaN on every net here:
among its top-100 Ritz values (ranked by magnitude) some are negative; dattri
0.3.0 warns and lowers ``proj_dim`` to the count of positive ones but keeps the
negative ones and divides by their square root. It is run and reported as
failed.

Sign conventions (skinfluence: higher = more beneficial = upweighting the
training row lowers the test row's loss):

- kronfluence's pairwise score is ``g_measurement^T (G + damping I)^-1
  g_train_loss`` with no minus sign: positive = upweighting the training row
  lowers the measurement. Its documentation (DOCUMENTATION.md, "How should I
  implement Task.compute_measurement?") says influence functions approximate
  the effect of upweighting a training point on the measurement, and its LDS
  examples predict the loss of a retrained model as ``-masks @ scores.T`` and
  list the most positive scores as the most influential (helpful) rows. With
  the loss as measurement that is skinfluence's sign: used as is.
- dattri: ``dattri.metric.calculate_lds_ground_truth`` returns the negated
  test loss (its docstring: "The target value will be flipped to be consistent
  with the score calculated by the attributors"), and ``dattri.metric.lds``
  correlates the scores with it directly: a positive score lowers the test
  loss. skinfluence's sign: used as is (after the transpose). TRAK's score is
  for the margin (log-odds) of the test row, which rises as its loss falls:
  also used as is.

Both are checked on every run: the mean Spearman correlation of each method's
rows with skinfluence's ``ip`` rows is reported, and is positive throughout.

Threads: OMP_NUM_THREADS=1 (set here if unset), ``torch.set_num_threads(1)``,
``threadpoolctl.threadpool_limits(1)``.

Run (the environment: ``bash benchmarks/models/setup_peers_env.sh``)::

    OMP_NUM_THREADS=1 /work/bench_envs/nets/bin/python \
        benchmarks/models/bench_nets_peers.py --seeds 5

``--nets``, ``--methods`` and ``--subsets`` (refits of the LDS, default 50)
rerun parts; ``--append`` keeps the earlier lines of the JSON-lines file
(else it is truncated); ``--report`` only writes the Markdown from it;
``--out STEM`` names both files (default ``RESULTS_nets_peers``). Three more
method keys, not run by default, run kronfluence's EK-FAC off its defaults
(``kf_ekfac_heuristic``: ``damping_factor=None``; ``kf_ekfac_2e-3``: damping
2e-3, skinfluence's damping plus weight decay; ``kf_ekfac_empirical``: the
empirical Fisher), to see where a gap between the two comes from::

    OMP_NUM_THREADS=1 /work/bench_envs/nets/bin/python benchmarks/models/bench_nets_peers.py \
        --seeds 5 --methods sk_kfac sk_ekfac kf_ekfac kf_ekfac_heuristic kf_ekfac_2e-3 \
        kf_ekfac_empirical --out RESULTS_nets_peers_kronfluence_settings
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # dattri's progress bars

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from importlib.metadata import PackageNotFoundError, version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import rankdata  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cnn_flips import CNN, DECAY, EPOCHS, flipped_digits, make_net  # noqa: E402
from bench_curvature import MLP  # noqa: E402

from skinfluence import KFAC, influence_matrix  # noqa: E402
from skinfluence.metrics import linear_datamodeling_score  # noqa: E402

HERE = Path(__file__).resolve().parent
BASE = "kronfluence EK-FAC"


class Conv1dNet(nn.Module):
    """The 64 pixels as a 1 x 64 sequence."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(8, 16, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(8))
        self.head = nn.Linear(16 * 8, 10)

    def forward(self, X):
        return self.head(self.features(X.reshape(-1, 1, 64)).flatten(1))


class Conv2dTwin(nn.Module):
    """A trained Conv1dNet with each Conv1d as a Conv2d of kernel (1, k): the same function."""

    def __init__(self, net):
        super().__init__()
        layers = []
        for m in net.features:
            if isinstance(m, nn.Conv1d):
                conv = nn.Conv2d(m.in_channels, m.out_channels, (1, m.kernel_size[0]),
                                 padding=(0, m.padding[0]))
                with torch.no_grad():
                    conv.weight.copy_(m.weight[:, :, None, :])
                    conv.bias.copy_(m.bias)
                layers.append(conv)
            elif isinstance(m, nn.MaxPool1d):
                layers.append(nn.MaxPool2d((1, m.kernel_size)))
            elif isinstance(m, nn.AdaptiveAvgPool1d):
                layers.append(nn.AdaptiveAvgPool2d((1, m.output_size)))
            else:
                layers.append(copy.deepcopy(m))
        self.features = nn.Sequential(*layers)
        self.head = copy.deepcopy(net.head)

    def forward(self, X):
        return self.head(self.features(X.reshape(-1, 1, 1, 64)).flatten(1))


NETS = {"cnn": CNN, "mlp": MLP, "conv1d": Conv1dNet}

METHOD_KEYS = {  # --methods key -> the rows it makes
    "sk_ip": "skinfluence IP",
    "sk_kfac": "skinfluence K-FAC",
    "sk_ekfac": "skinfluence EK-FAC",
    "kf_kfac": "kronfluence K-FAC",
    "kf_ekfac": "kronfluence EK-FAC",
    "dt_ekfac": "dattri EK-FAC",
    "dt_cg": "dattri CG",
    "dt_arnoldi": "dattri Arnoldi",
    "dt_trak": "dattri TRAK",
    # not run by default: kronfluence EK-FAC off its defaults, to see where a gap comes from
    "kf_ekfac_heuristic": "kronfluence EK-FAC (damping_factor=None: 0.1 x mean eigenvalue)",
    "kf_ekfac_2e-3": "kronfluence EK-FAC (damping_factor=2e-3)",
    "kf_ekfac_empirical": "kronfluence EK-FAC (use_empirical_fisher=True)",
}
DEFAULT_KEYS = [k for k in METHOD_KEYS if not k.startswith("kf_ekfac_")]
# over the ~3 minutes per seed allowed a peer's attributor (trial run, seed 0, this machine);
# --force runs them anyway
TOO_SLOW = {("cnn", "dt_cg"): "398 s on seed 0 in a trial run (over 3 minutes per seed)",
            ("conv1d", "dt_cg"): "220 s on seed 0 in a trial run (over 3 minutes per seed)"}


# ---------------------------------------------------------------- skinfluence
def skinfluence_method(method):
    def run(net, X, y, Xt, yt, seed):  # KFAC's warning naming the batch norms is dropped
        return influence_matrix(net, X, y, Xt, yt, method=method, weight_decay=DECAY,
                                random_state=seed)
    return run


# ---------------------------------------------------------------- kronfluence
def kronfluence_method(strategy, twin=False, damping=1e-8, empirical=False):
    def run(net, X, y, Xt, yt, seed):
        from kronfluence.analyzer import Analyzer, prepare_model
        from kronfluence.arguments import FactorArguments, ScoreArguments
        from kronfluence.task import Task

        class Classification(Task):
            def compute_train_loss(self, batch, model, sample=False):
                inputs, labels = batch
                logits = model(inputs)
                if sample:  # the true Fisher: labels drawn from the model
                    with torch.no_grad():
                        labels = torch.multinomial(F.softmax(logits.detach(), -1), 1).flatten()
                return F.cross_entropy(logits, labels, reduction="sum")

            def compute_measurement(self, batch, model):
                inputs, labels = batch
                return F.cross_entropy(model(inputs), labels, reduction="sum")

        torch.manual_seed(seed)
        module = Conv2dTwin(net.module_) if twin else copy.deepcopy(net.module_)
        task = Classification()
        model = prepare_model(model=module, task=task)
        train = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
        test = torch.utils.data.TensorDataset(torch.as_tensor(Xt), torch.as_tensor(yt))
        with tempfile.TemporaryDirectory() as out:
            analyzer = Analyzer(analysis_name="bench", model=model, task=task, cpu=True,
                                disable_tqdm=True, output_dir=out, log_level=logging.WARNING)
            analyzer.fit_all_factors(factors_name="f", dataset=train, per_device_batch_size=len(X),
                                     factor_args=FactorArguments(
                                         strategy=strategy, use_empirical_fisher=empirical))
            analyzer.compute_pairwise_scores(scores_name="s", factors_name="f",
                                             query_dataset=test, train_dataset=train,
                                             per_device_query_batch_size=len(Xt),
                                             per_device_train_batch_size=len(X),
                                             score_args=ScoreArguments(damping_factor=damping))
            scores = analyzer.load_pairwise_scores(scores_name="s")["all_modules"]
        return scores.double().numpy()  # (n_test, n_train), higher = lowers the test loss
    return run


# ---------------------------------------------------------------- dattri
def _dattri_setup(net, X, y, Xt, yt):
    from dattri.task import AttributionTask

    model = copy.deepcopy(net.module_).eval()

    def ce(params, batch):  # mean cross-entropy of a batch (one row inside vmap)
        x, lab = batch
        return F.cross_entropy(torch.func.functional_call(model, params, x), lab.reshape(-1))

    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y)),
        batch_size=len(X), shuffle=False)
    test = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.as_tensor(Xt), torch.as_tensor(yt)),
        batch_size=len(Xt), shuffle=False)
    return model, ce, AttributionTask(loss_func=ce, model=model,
                                      checkpoints=model.state_dict()), train, test


def dattri_if(name, **kwargs):
    def run(net, X, y, Xt, yt, seed):
        import dattri.algorithm as algorithms

        _, _, task, train, test = _dattri_setup(net, X, y, Xt, yt)
        attributor = getattr(algorithms, name)(task=task, device="cpu", **kwargs)
        attributor.cache(train)
        with torch.no_grad():
            scores = attributor.attribute(train, test)  # (n_train, n_test)
        return scores.T.double().numpy()
    return run


def dattri_trak(net, X, y, Xt, yt, seed):
    from dattri.algorithm import TRAKAttributor
    from dattri.task import AttributionTask

    model = copy.deepcopy(net.module_).eval()

    def margin(params, row):  # TRAK's output function: log p / (1 - p) of the given label
        x, lab = row
        logp = -F.cross_entropy(torch.func.functional_call(model, params, x.reshape(1, -1)),
                                lab.reshape(1))
        return logp - torch.log(1 - torch.exp(logp))

    def correct_p(params, row):
        x, lab = row
        return torch.exp(-F.cross_entropy(
            torch.func.functional_call(model, params, x.reshape(1, -1)), lab.reshape(1)))

    task = AttributionTask(loss_func=margin, model=model, checkpoints=model.state_dict())
    attributor = TRAKAttributor(task=task, correct_probability_func=correct_p, device="cpu",
                                projector_kwargs={"proj_seed": seed})
    loader = lambda A, b: torch.utils.data.DataLoader(  # noqa: E731
        torch.utils.data.TensorDataset(torch.as_tensor(A), torch.as_tensor(b)),
        batch_size=100, shuffle=False)
    with torch.no_grad():
        attributor.cache(loader(X, y))
        scores = attributor.attribute(loader(Xt, yt))  # (n_train, n_test)
    return scores.T.double().numpy()


def methods_for(net_name, keys, force=False):
    out = {}
    for key in keys:
        name = METHOD_KEYS[key]
        if (net_name, key) in TOO_SLOW and not force:
            continue
        if key == "sk_ip":
            out[name] = skinfluence_method("ip")
        elif key == "sk_kfac":
            out[name] = skinfluence_method(KFAC())
        elif key == "sk_ekfac":
            out[name] = skinfluence_method(KFAC(eigen_correction=True))
        elif key in ("kf_kfac", "kf_ekfac"):
            strategy = "kfac" if key == "kf_kfac" else "ekfac"
            out[name] = kronfluence_method(strategy)
            if net_name == "conv1d":
                out[name + " (Conv2d twin)"] = kronfluence_method(strategy, twin=True)
        elif key.startswith("kf_ekfac_"):  # on conv1d, on the Conv2d twin only
            twin = net_name == "conv1d"
            kwargs = {"kf_ekfac_heuristic": {"damping": None}, "kf_ekfac_2e-3": {"damping": 2e-3},
                      "kf_ekfac_empirical": {"empirical": True}}[key]
            out[name + (" (Conv2d twin)" if twin else "")] = kronfluence_method(
                "ekfac", twin=twin, **kwargs)
        elif key == "dt_ekfac":
            out[name] = dattri_if("IFAttributorEKFAC", damping=DECAY)
        elif key == "dt_cg":
            out[name] = dattri_if("IFAttributorCG", regularization=DECAY)
        elif key == "dt_arnoldi":
            out[name] = dattri_if("IFAttributorArnoldi", regularization=DECAY)
        elif key == "dt_trak":
            out[name] = dattri_trak
    return out


def row_spearman(A, B):
    """Mean over rows of the Spearman correlation of A's row with B's row."""
    ra, rb = rankdata(A, axis=1), rankdata(B, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(axis=1) / den
    return float(np.nanmean(rho))


def run_one(net_name, seed, keys, n_subsets, force=False):
    X, y, Xt, yt, flipped = flipped_digits(seed)
    torch.manual_seed(seed)
    net = make_net(NETS[net_name])
    start = time.perf_counter()
    net.fit(X, y)
    row = {"net": net_name, "seed": seed, "epoch_s": (time.perf_counter() - start) / EPOCHS,
           "params": sum(p.numel() for p in net.module_.parameters()),
           "memorised": float((net.predict(X[flipped]) == y[flipped]).mean()),
           "test_acc": float((net.predict(Xt) == yt).mean()),
           "methods": {}, "failed": {},
           "skipped": {METHOD_KEYS[k]: why for (n, k), why in TOO_SLOW.items()
                       if n == net_name and k in keys and not force}}
    if net_name == "conv1d":  # the twin computes the same function
        twin = Conv2dTwin(net.module_).eval()
        with torch.no_grad():
            a, b = net.module_.eval()(torch.as_tensor(Xt)), twin(torch.as_tensor(Xt))
        row["twin_max_abs_diff"] = float((a - b).abs().max())
    matrices = {}
    for name, run in methods_for(net_name, keys, force).items():
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                M = np.asarray(run(net, X, y, Xt, yt, seed), dtype=np.float64)
            except Exception as exc:  # a peer that cannot handle this net: record, go on
                M, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        elapsed = time.perf_counter() - start
        said = [str(w.message).splitlines()[0][:400] for w in caught
                if not issubclass(w.category, (FutureWarning, DeprecationWarning))
                and not any(word in str(w.message) for word in ("deprecated", "KFAC factors"))]
        if M is None:
            row["failed"][name] = error
            print(f"  {net_name} seed {seed} {name} FAILED: {error}", flush=True)
            continue
        if M.shape != (len(Xt), len(X)) or not np.all(np.isfinite(M)):
            row["failed"][name] = (f"{int((~np.isfinite(M)).sum()):,} of {M.size:,} entries "
                                   f"not finite after {elapsed:.1f} s"
                                   + (f"; it warned: {said[0]}" if said else ""))
            print(f"  {net_name} seed {seed} {name} FAILED: {row['failed'][name]}", flush=True)
            continue
        matrices[name] = M
        row["methods"][name] = {"time": elapsed,
                                "auc": float(roc_auc_score(flipped, -M.sum(axis=0)))}
        print(f"  {net_name} seed {seed} {name}: {elapsed:.2f} s, flip AUC "
              f"{row['methods'][name]['auc']:.3f}", flush=True)
    reference = matrices.get("skinfluence IP")
    base = row["methods"].get(BASE, {}).get("time")
    for name, M in matrices.items():
        entry = row["methods"][name]
        entry["rel_time"] = entry["time"] / base if base else None
        entry["rho_ip"] = row_spearman(M, reference) if reference is not None else None
    if matrices:
        torch.manual_seed(seed)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant-loss rows left out
            lds = linear_datamodeling_score(make_net(NETS[net_name]), X, y, Xt, yt, matrices,
                                            n_subsets=n_subsets, random_state=seed)
        row["lds_s"] = time.perf_counter() - start
        for name, value in lds.items():
            row["methods"][name]["lds"] = float(value)
    row["n_subsets"] = n_subsets
    return row


# ---------------------------------------------------------------- report
def versions():
    out = {}
    for name in ("torch", "skinfluence", "kronfluence", "dattri", "skorch", "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    try:  # the checkout skinfluence ran from (editable install)
        import subprocess

        git = ["git", "-C", str(HERE)]
        head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--", "../../skinfluence"],
                               capture_output=True, text=True, check=True).stdout.strip()
        out["skinfluence"] += f" (commit {head}{', with local changes' if dirty else ''})"
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def _span(a, fmt):
    return f"{fmt.format(a.min())}-{fmt.format(a.max())}"


NOTES = """## What each library does here

- Batch norm (`cnn`). All three score the trained module in eval mode (running
  statistics): skinfluence deep-copies it and calls `eval()`; kronfluence's
  `prepare_model` and dattri's checkpoint loader call `model.eval()`.
  skinfluence IP and dattri CG / Arnoldi / TRAK take the batch-norm weights and
  biases (48 of the 3,866 parameters) into the gradients like any other;
  skinfluence K-FAC / EK-FAC precondition them by a scaled identity (the
  factored layers' mean curvature; a UserWarning names them); kronfluence tracks
  only `nn.Linear` and `nn.Conv2d`, so they take no part in its scores;
  dattri EK-FAC takes only `nn.Linear` layers (the head: 2,570 of 3,866
  parameters on `cnn`, 1,290 of 1,994 on `conv1d`).
- `conv1d`: kronfluence skips `nn.Conv1d` without a word and scores with the
  head alone; the "(Conv2d twin)" rows run it on the same trained weights with
  each Conv1d rewritten as a Conv2d of kernel (1, 5). skinfluence factors Conv1d
  as is.
- Damping. skinfluence K-FAC: 1e-3, plus the weight decay 1e-3, added to every
  eigenvalue of the mean-loss Gauss-Newton factors (exact expectation over the
  model's labels). kronfluence: `damping_factor=1e-08` by default, on
  covariances averaged over the rows (true Fisher from one sampled label per row),
  no weight decay; `None` would be 0.1 x the mean eigenvalue of each module.
  dattri: EK-FAC `damping` and CG / Arnoldi `regularization` default to 0.0;
  1e-3 (the weight decay) is given here.
- dattri 0.3.0's EK-FAC, as released (not patched here): `estimate_lambda` and
  `transform_test_rep` project a layer's gradient as `q_s @ G @ q_a.T` with
  `q_a, q_s` from `torch.linalg.eigh` (eigenvectors in columns), i.e. onto
  the rows of the eigenvector matrices, not the Kronecker eigenbasis
  (`q_s.T @ G @ q_a`); and `transform_test_rep` concatenates the flat weight
  and bias gradients and reshapes them to (out, in + 1), which shifts the rows
  when there is a bias. Checked by hand on the mlp's output layer (seed 0): its
  corrected eigenvalues have a Spearman correlation of 0.11 with the K-FAC
  eigenvalue products (0.99 when projected on the eigenbasis), and 96% of the
  layer's Fisher block lies off the diagonal in its basis (59% in the
  eigenbasis). Its scores stay close to plain gradient inner products (rho(IP)).
- dattri Arnoldi: NaN on every net and seed (the reason is in the tables).
  dattri CG (10 iterations on the indefinite Hessian plus 1e-3) is run on
  `mlp` only; on the conv nets it took over 3 minutes per seed.
- dattri TRAK: one checkpoint and no ensemble, where the TRAK paper averages
  many models; a low LDS is expected.
"""
HAND = "<!-- written by hand below this line; kept when the report is rewritten -->"


def report(rows, command, keep=""):
    v = rows[0].get("versions", versions())
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "# K-FAC / EK-FAC influence on small networks: skinfluence, kronfluence, dattri", "",
        f"Command (repository root): `{command}`", "",
        f"Machine: 2-core x86-64 CPU ({platform.processor() or platform.machine()}), no GPU; "
        "OMP_NUM_THREADS=1, `torch.set_num_threads(1)`, threadpoolctl BLAS limit 1; "
        "the other core may have been in use by other work, so read times as "
        "same-run ratios. Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        f"Seeds {', '.join(map(str, seeds))}. Per seed: digits, 1,000 training rows "
        "(20% of labels flipped to another digit), 300 clean validation rows as test "
        "rows; each net trained by skorch (Adam lr 0.003, weight decay 1e-3, 10 epochs, "
        "batch 64). Each method computes the full 300 x 1,000 influence matrix of the same "
        "trained net, in one process, interleaved; time is wall clock of everything "
        "(factors, per-row gradients, solves, scoring). LDS: "
        "`skinfluence.metrics.linear_datamodeling_score` with all methods' matrices in one "
        f"dict ({rows[0]['n_subsets']} half-size refits shared by all methods, per-test-row "
        "Spearman, averaged). Flip AUC: ROC AUC of `-M.sum(axis=0)` against the flipped "
        "mask. rho(IP): mean per-test-row Spearman with skinfluence IP's matrix (sign "
        "check). Settings and sign conversions: the docstring of "
        "`benchmarks/models/bench_nets_peers.py`; in short, skinfluence K-FAC damping 1e-3 + "
        "weight decay 1e-3, exact Gauss-Newton factors; kronfluence defaults (damping 1e-8, "
        "true Fisher from one sampled label per row, no weight decay); dattri EK-FAC damping "
        "and CG / Arnoldi regularization 1e-3 (the weight decay), EK-FAC on Linear layers "
        "only, empirical Fisher; TRAK one checkpoint, projection 512.", ""]
    for net_name in NETS:
        sub = sorted((r for r in rows if r["net"] == net_name), key=lambda r: r["seed"])
        if not sub:
            continue
        names = []
        for r in sub:
            names += [n for n in r["methods"] if n not in names]
        lines += [f"## {net_name} ({sub[0]['params']:,} parameters; test accuracy "
                  f"{np.mean([r['test_acc'] for r in sub]):.3f}, fits "
                  f"{np.mean([r['memorised'] for r in sub]):.1%} of the flipped labels; one "
                  f"training epoch {np.mean([r['epoch_s'] for r in sub]):.3f} s)", "",
                  "| method | LDS mean ± std (min-max) | flip AUC mean (min-max) | "
                  "time s mean (min-max) | time / kronfluence EK-FAC | rho(IP) | seeds |",
                  "|---|---|---|---|---|---|---|"]
        for name in names:
            got = [r["methods"][name] for r in sub if name in r["methods"]]
            lds = np.array([g["lds"] for g in got if "lds" in g])
            auc = np.array([g["auc"] for g in got])
            t = np.array([g["time"] for g in got])
            rel = np.array([g["rel_time"] for g in got if g.get("rel_time") is not None])
            rho = np.array([g["rho_ip"] for g in got if g.get("rho_ip") is not None])
            lines.append(
                f"| {name} | "
                + (f"{lds.mean():.3f} ± {lds.std():.3f} ({_span(lds, '{:.3f}')})" if len(lds)
                   else "-")
                + f" | {auc.mean():.3f} ({_span(auc, '{:.3f}')}) | "
                f"{t.mean():.2f} ({_span(t, '{:.2f}')}) | "
                + (f"{rel.mean():.2f}" if len(rel) else "-") + " | "
                + (f"{rho.mean():.2f}" if len(rho) else "-") + f" | {len(got)} |")
        failed = {}
        for r in sub:
            for name, why in r["failed"].items():
                failed.setdefault(name, []).append((r["seed"], why))
        for name, items in failed.items():
            why = items[0][1]
            if not why.endswith(".") and ". " in why:  # a warning cut short: whole sentences
                why = why[:why.rindex(". ") + 1]
            lines.append(f"\n{name} failed on seed(s) {', '.join(str(s) for s, _ in items)}: "
                         f"{why}")
        for name, why in sub[0].get("skipped", {}).items():
            lines.append(f"\n{name} not run on {net_name}: {why}.")
        if "twin_max_abs_diff" in sub[0]:
            lines.append("\nThe Conv2d twin's logits differ from the Conv1d net's by at most "
                         f"{max(r['twin_max_abs_diff'] for r in sub):.1e} on the test rows.")
        pairs = []
        for ours in ("skinfluence K-FAC", "skinfluence EK-FAC"):
            for theirs in [n for n in names if n.startswith("kronfluence")]:
                d = np.array([r["methods"][ours]["lds"] - r["methods"][theirs]["lds"]
                              for r in sub if "lds" in r["methods"].get(ours, {})
                              and "lds" in r["methods"].get(theirs, {})])
                if len(d):
                    pairs.append(f"| {ours} - {theirs} | {d.mean():+.3f} | "
                                 f"{d.min():+.3f} to {d.max():+.3f} | "
                                 f"{int((d > 0).sum())}/{len(d)} |")
        if pairs:
            lines += ["", "Paired by seed, LDS difference:", "",
                      "| pair | mean | range | seeds where skinfluence is higher |",
                      "|---|---|---|---|"] + pairs
        lines.append("")
    if any(n.startswith("dattri") for r in rows for n in r["methods"]):
        lines.append(NOTES)
    return "\n".join(lines) + "\n" + keep


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--nets", nargs="*", default=list(NETS), choices=list(NETS))
    parser.add_argument("--methods", nargs="*", default=DEFAULT_KEYS,
                        choices=list(METHOD_KEYS))
    parser.add_argument("--out", default="RESULTS_nets_peers",
                        help="stem of the .jsonl / .md files written next to this script")
    parser.add_argument("--subsets", type=int, default=50, help="LDS refits per (net, seed)")
    parser.add_argument("--append", action="store_true", help="keep the earlier JSON lines")
    parser.add_argument("--report", action="store_true", help="only write the report")
    parser.add_argument("--force", action="store_true",
                        help="also run the attributors TOO_SLOW leaves out")
    args = parser.parse_args()
    command = "OMP_NUM_THREADS=1 /work/bench_envs/nets/bin/python " \
              "benchmarks/models/bench_nets_peers.py --seeds " + str(args.seeds)
    if args.nets != list(NETS):
        command += " --nets " + " ".join(args.nets)
    if args.methods != DEFAULT_KEYS:
        command += " --methods " + " ".join(args.methods)
    if args.subsets != 50:
        command += f" --subsets {args.subsets}"
    if args.out != "RESULTS_nets_peers":
        command += f" --out {args.out}"
    jsonl, md = HERE / f"{args.out}.jsonl", HERE / f"{args.out}.md"
    if not args.report:
        torch.set_num_threads(1)
        if not args.append:
            jsonl.write_text("")
        v = versions()
        with threadpool_limits(1):
            for seed in range(args.seeds):
                for net_name in args.nets:
                    start = time.perf_counter()
                    row = run_one(net_name, seed, args.methods, args.subsets, args.force)
                    row["versions"] = v
                    with jsonl.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(f"{net_name} seed {seed} done in {time.perf_counter() - start:.0f} s: "
                          + ", ".join(f"{n} LDS {m.get('lds', float('nan')):.3f}"
                                      for n, m in row["methods"].items()), flush=True)
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    keep = md.read_text() if md.exists() else ""
    keep = keep[keep.index(HAND):] if HAND in keep else ""
    md.write_text(report(rows, command, keep))
    print(md.read_text())


if __name__ == "__main__":
    main()
