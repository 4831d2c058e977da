#!/usr/bin/env bash
# `make bench`: this project's `extract` end to end (read, decode, resize, preprocess, conv base, features
# back to the coordinator, HDF5 written) against ONNX Runtime on the same VGG16 network, weights and images
# (ORT gets float32 input already decoded), at 224×224 and 150×150, in one run. Prints images/s of each,
# their ratio, the workers' peak RSS, the fast path's largest error against the im2col reference path, and
# the OpenBLAS kernel set the workers ran.
#
# Needs the release build (make bench builds it), python3 with venv, and PyPI (first run only: onnx,
# onnxruntime, numpy, h5py, pillow into bench-output/.venv). Environment knobs:
#   BENCH_IMAGES (default 160)   JPEGs (500×375, two classes) generated under bench-output/images
#   BENCH_SIZES (default "224 150")
#   BENCH_EXTRACT_ARGS            extra arguments for `extract`, e.g. "--workers 1 --threads 2"
#   ORT_THREADS (default 2)       ONNX Runtime intra-op threads
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh python3-venv
bin=$(swift build -c release --show-bin-path)
coordinator="$bin/bottleneck-coordinator"
out=bench-output
images=${BENCH_IMAGES:-160}
sizes=${BENCH_SIZES:-"224 150"}
mkdir -p "$out"

venv="$out/.venv"
if [ ! -f "$venv/.installed" ]; then
    echo "== creating $venv (onnx onnxruntime numpy h5py pillow from PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check onnx onnxruntime numpy h5py pillow
    touch "$venv/.installed"
fi
py="$venv/bin/python"

tree="$out/images-$images/train"
echo "== $images JPEG images 500×375 in $tree"
"$py" scripts/bench/make_images.py "$tree" "$images"

weights="$out/vgg16-generated-seed1.h5"
[ -f "$weights" ] || "$coordinator" generate-weights --output "$weights" --seed 1 >/dev/null

for size in $sizes; do
    echo "== $size×$size: extract (end to end)"
    # shellcheck disable=SC2086
    "$py" scripts/bench/run_extract.py "$out/extract-$size.json" -- "$coordinator" extract --train "$tree" \
        --weights "$weights" --output "$out/features-$size.h5" --image-size "$size" --restart --json-progress \
        ${BENCH_EXTRACT_ARGS:-}
    grep -h "OpenBLAS kernels" "$out/extract-$size.json.stderr" | sed 's/^/   /' | sort -u || true
    core=$(grep -ho "OpenBLAS kernels: [A-Za-z0-9]*" "$out/extract-$size.json.stderr" | head -1 | awk '{print $3}')
    echo "== $size×$size: ONNX Runtime (${ORT_THREADS:-2} threads, batch 8, decoded input)"
    "$py" scripts/bench/ort_runner.py --weights "$weights" --features "$out/features-$size.h5" --tree "$tree" \
        --size "$size" --threads "${ORT_THREADS:-2}" > "$out/ort-$size.json"
    echo "== $size×$size: conv base alone, fast path vs reference path (OpenBLAS ${core:-default})"
    OPENBLAS_CORETYPE=${core:-${OPENBLAS_CORETYPE:-}} "$coordinator" bench-engine --weights "$weights" \
        --image-size "$size" --images 3 > "$out/engine-$size.json"
done

"$py" - "$out" $sizes <<'PY'
import json, sys
out, sizes = sys.argv[1], sys.argv[2:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"\nCPU: {cpu}, {len([l for l in open('/proc/cpuinfo') if l.startswith('processor')])} logical cores")
head = f"{'size':>7} {'ours img/s':>10} {'(steady)':>9} {'ORT img/s':>9} {'ratio':>6} {'worker RSS':>10} " \
       f"{'fast vs ref':>11} {'ORT vs ours':>11}  OpenBLAS"
print(head)
print("-" * len(head))
for size in sizes:
    ext = json.load(open(f"{out}/extract-{size}.json"))
    ort = json.load(open(f"{out}/ort-{size}.json"))
    eng = json.load(open(f"{out}/engine-{size}.json"))
    images = ort["images"]
    ours = images / ext["wall_seconds"]
    steady = (ext.get("summary") or {}).get("images_per_second", float("nan"))
    ratio = ours / ort["images_per_second"]
    print(f"{size + '²':>7} {ours:10.1f} {steady:9.1f} {ort['images_per_second']:9.1f} {ratio:6.2f} "
          f"{ext['worker_peak_rss_mib']:7.0f} MiB {eng['max_relative_error_fast_vs_reference']:11.1e} "
          f"{ort['max_relative_error_vs_extract']:11.1e}  {eng['openblas_core']}")
for size in sizes:
    eng = json.load(open(f"{out}/engine-{size}.json"))
    print(f"\nconv base at {size}² on one thread, GFLOP/s per layer (direct-convolution FLOPs):")
    for algorithm in ("direct", "adaptive"):
        layers = [next(iter(d.items())) for d in eng[algorithm]["gflops_per_second_by_layer"]]
        print(f"  {algorithm:9} {eng[algorithm]['ms_per_image']:6.1f} ms/image  "
              + " ".join(f"{name.replace('block', 'b').replace('_conv', '.')}:{g:.0f}" for name, g in layers))
print("\nours: wall clock of the whole `extract` command (startup, decode, write included), images/s;"
      " (steady): the coordinator's own rate. ORT: inference only, on decoded float32 input."
      " fast vs ref / ORT vs ours: max |difference| / max |reference| of the features.")
PY
