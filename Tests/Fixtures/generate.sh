#!/usr/bin/env bash
# Regenerates the committed Keras golden fixtures under Tests/Fixtures/keras/.
#
#   Tests/Fixtures/generate.sh            # venv at <repo>/.venv-keras (created on first use)
#   KERAS_VENV=/path/to/venv Tests/Fixtures/generate.sh
#
# Needs python3 (>= 3.10) with venv and network access to PyPI on first use. CPU only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${KERAS_VENV:-$repo/.venv-keras}"

# Pinned versions: the fixtures record Keras behaviour of exactly these releases.
pins=(tf-keras==2.21.0 tensorflow-cpu==2.21.0 keras==3.15.1 h5py==3.14.0 pillow==13.0.0 numpy==2.4.6
      scipy==1.17.1)

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating venv $venv" >&2
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" - "${pins[@]}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "${pins[@]}"
fi

export PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES="" TF_DETERMINISTIC_OPS=1
export KERAS_BACKEND=tensorflow
cd "$here"
start=$(date +%s)
"$venv/bin/python" gen_tree.py
"$venv/bin/python" gen_weights.py
"$venv/bin/python" gen_golden.py
"$venv/bin/python" gen_top_model.py
"$venv/bin/python" gen_finetune.py
echo "fixtures regenerated in $(( $(date +%s) - start )) s" >&2
du -sh --apparent-size "$here/keras" >&2
