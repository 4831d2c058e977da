#!/usr/bin/env bash
# Creates the tf-keras venv of the benchmarks that run tf-keras (bench-output/.venv-tf: tensorflow-cpu,
# tf-keras, numpy, h5py, pillow, scipy from PyPI) unless it is there, and prints its python.
# Used by scripts/bench-finetune.sh and scripts/bench-topmodel.sh; run from the repository's root.
set -euo pipefail
venv=bench-output/.venv-tf
if [ ! -f "$venv/.installed" ]; then
    echo "== creating $venv (tensorflow-cpu tf-keras numpy h5py pillow scipy from PyPI)" >&2
    mkdir -p bench-output
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check tensorflow-cpu tf-keras numpy h5py pillow scipy >&2
    touch "$venv/.installed"
fi
echo "$venv/bin/python"
