"""IP's cost on a CNN, in forward passes over the same training rows.

Two CNNs on digits as 1 x 8 x 8 images (pixels / 16), 1,000 training rows and
300 validation rows per seed:

- ``bn``: the skorch CNN of ``bench_cnn_flips.py`` (conv, batch norm, conv,
  batch norm, linear; 3,866 parameters), 10 epochs of Adam;
- ``tanh``: the CNN of ``bench_nets.py`` (two convolutions, tanh, two linear
  layers; about 11k parameters), 30 full-batch Adam steps.

One forward pass: the fitted module in eval mode on all 1,000 training rows
under ``torch.no_grad()``. IP: the whole ``influence_scores(..., method="ip")``
call (input checks, the private copy of the module, the validation gradient,
the scoring pass and the objective's value). The two are timed alternately,
``--repeats`` times each per seed, and the ratio of their medians is the
seed's cost. Torch and BLAS threads pinned to 1.

Where the time goes, timed the same way (each step alone, on the same data):
``make_adapter`` (reading the net into its private eval-mode copy), the
training rows' conversion, the validation loss's gradient (one forward and
backward over the 300 validation rows) and the scoring pass (one JVP over the
1,000 training rows); the rest of the call is input checks and the result.

Run from the repository root: ``OMP_NUM_THREADS=1 python
benchmarks/models/bench_ip_cost.py [--seeds 5] [--repeats 9] [--label TEXT]``;
appends a table headed ``--label`` to ``RESULTS_ip_cost.md`` next to this file
(run it with ``PYTHONPATH`` at another checkout to measure that code).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _measure import interleaved_medians  # noqa: E402  (benchmarks/_measure.py)
from bench_cnn_flips import CNN, DECAY, make_net  # noqa: E402
from bench_nets import train as train_tanh_cnn  # noqa: E402

from skinfluence import influence_scores  # noqa: E402
from skinfluence.models import make_adapter  # noqa: E402
from skinfluence.objectives import Utility  # noqa: E402

STEPS = ("adapter", "training rows", "validation gradient", "scoring pass (JVP)")


def fitted_nets(seed):
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, train_size=1000, test_size=300,
                                              stratify=y, random_state=seed)
    torch.manual_seed(seed)
    skorch_cnn = make_net(CNN).fit(X_tr, y_tr)
    images = [a.reshape(-1, 1, 8, 8) for a in (X_tr, X_va)]
    tanh_cnn = train_tanh_cnn(seed, 16, images[0], y_tr)
    yield "bn", skorch_cnn, skorch_cnn.module_, (X_tr, y_tr, X_va, y_va), {"weight_decay": DECAY}
    yield "tanh", (tanh_cnn, nn.CrossEntropyLoss()), tanh_cnn, \
        (images[0], y_tr, images[1], y_va), {}


def steps(model, data, kwargs):
    """Each step of the IP call as a function of nothing, in the call's order."""
    X, y, X_val, y_val = data
    adapter = make_adapter(model, **kwargs)
    train = adapter.training_data(X, y, None)
    terms = Utility().terms(adapter, X_val, y_val, None)
    v = adapter.objective_gradient(terms)
    return {"adapter": lambda: make_adapter(model, **kwargs),
            "training rows": lambda: adapter.training_data(X, y, None),
            "validation gradient": lambda: adapter.objective_gradient(terms),
            "scoring pass (JVP)": lambda: adapter.score_pass(train, [adapter.theta], [v],
                                                             batch_size=len(y))}


def cost(model, module, data, kwargs, repeats):
    """IP's and each step's median time over the forward pass's median; the forward's."""
    rows = torch.as_tensor(data[0])
    was_training = module.training
    module.eval()

    def forward():
        with torch.no_grad():
            module(rows)

    jobs = {"forward": forward,
            "ip": lambda: influence_scores(model, *data, method="ip", **kwargs),
            **steps(model, data, kwargs)}
    medians = interleaved_medians(jobs, repeats)
    module.train(was_training)
    base = medians["forward"]
    return {name: t / base for name, t in medians.items()}, base


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--label", default="this checkout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    with threadpool_limits(1):
        for seed in range(args.seeds):
            for name, model, module, data, kwargs in fitted_nets(seed):
                params = sum(p.numel() for p in module.parameters())
                ratios, forward = cost(model, module, data, kwargs, args.repeats)
                results.setdefault(name, []).append((ratios, forward, params))
                print(f"seed {seed} {name} ({params} params): IP = {ratios['ip']:.2f} forward "
                      f"passes (one forward {forward * 1e3:.2f} ms); "
                      + ", ".join(f"{k} {ratios[k]:.2f}" for k in STEPS), flush=True)
    import skinfluence

    lines = ["", f"## {args.label}", "",
             f"`bench_ip_cost.py --seeds {args.seeds} --repeats {args.repeats}`, skinfluence "
             f"from `{Path(skinfluence.__file__).parent.parent.name}`; 2-core x86-64 CPU, no "
             "GPU; torch and BLAS threads 1.", "",
             "| CNN | parameters | IP in forward passes, mean +- std (min-max) | one forward, "
             "ms | " + " | ".join(STEPS) + " |",
             "|" + "---|" * (4 + len(STEPS))]
    for name, rows in results.items():
        ratios, forward, params = zip(*rows)
        ip, forward = np.array([r["ip"] for r in ratios]), np.array(forward)
        parts = [np.array([r[k] for r in ratios]) for k in STEPS]
        lines.append(f"| {name} | {params[0]:,} | {ip.mean():.2f} +- {ip.std():.2f} "
                     f"({ip.min():.2f}-{ip.max():.2f}) | {forward.mean() * 1e3:.2f} | "
                     + " | ".join(f"{p.mean():.2f} +- {p.std():.2f}" for p in parts) + " |")
    out = Path(__file__).resolve().parent / "RESULTS_ip_cost.md"
    if not out.exists():
        out.write_text("# IP's cost on a CNN, in forward passes over the same rows\n")
    with out.open("a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
