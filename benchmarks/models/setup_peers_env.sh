#!/usr/bin/env bash
# Builds the virtual environment for bench_nets_peers.py: skinfluence (editable, this
# checkout) beside the peer libraries kronfluence and dattri, on the CPU build of torch.
#
#   bash benchmarks/models/setup_peers_env.sh [VENV_DIR]    (default /work/bench_envs/nets)
#
# torch 2.13.0 (CPU) is installed first, from the wheel on local disk; everything else is
# installed under a constraints file pinning torch==2.13.0, so that no package can swap it
# for a (multi-GB) CUDA build. A peer that cannot be installed that way is reported and
# skipped; the benchmark then runs without it. kronfluence pulls in torchvision
# (0.28.0 from PyPI), which fails to import beside this torch build ("operator
# torchvision::nms does not exist"); neither peer imports it on the paths used here.
set -euo pipefail

VENV=${1:-/work/bench_envs/nets}
REPO=$(cd "$(dirname "$0")/../.." && pwd)

python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install --upgrade pip setuptools wheel
"$PY" -m pip install torch==2.13.0

CONSTRAINTS="$VENV/torch-constraints.txt"
echo "torch==2.13.0" > "$CONSTRAINTS"
"$PY" -m pip install -c "$CONSTRAINTS" -e "$REPO" skorch threadpoolctl scikit-learn scipy

for peer in kronfluence dattri; do
    if "$PY" -m pip install -c "$CONSTRAINTS" "$peer"; then
        if ! "$PY" -c "import $peer" 2>"$VENV/$peer-import.log"; then
            echo "WARNING: $peer installed but does not import:" >&2
            tail -n 3 "$VENV/$peer-import.log" >&2
        fi
    else
        echo "WARNING: $peer could not be installed beside torch 2.13.0; going on without it" >&2
    fi
done

"$PY" - <<'EOF'
from importlib.metadata import version, PackageNotFoundError
for name in ("torch", "skinfluence", "skorch", "scikit-learn", "scipy", "threadpoolctl",
             "kronfluence", "dattri"):
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        print(f"{name}: not installed")
EOF
