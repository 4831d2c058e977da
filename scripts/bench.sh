#!/usr/bin/env bash
# `make bench`: this project's `extract` end to end (read, decode, resize, preprocess, conv base, features
# back to the coordinator, HDF5 written) against ONNX Runtime on the same VGG16 network, weights and images
# (ORT gets float32 input already decoded), at 224×224 and 150×150, in one run. Prints images/s of each,
# their ratio, the workers' peak RSS, the fast path's largest error against the im2col reference path, and
# the OpenBLAS kernel set the workers ran. On a CPU with avx512_bf16 each round also runs `extract
# --precision bf16` and OpenVINO (the same ONNX model, INFERENCE_PRECISION_HINT bf16, then f32) on the same
# decoded images, and prints our bf16 against OpenVINO's bf16 (min/median/max of the rounds). Every engine
# runs under `taskset -c $BENCH_CPUS`, on the same cores.
#
# Needs the release build (make bench builds it), python3 with venv, and PyPI (first run only: onnx,
# onnxruntime, openvino, numpy, h5py, pillow into bench-output/.venv). Environment knobs:
#   BENCH_IMAGES (default 384)   JPEGs (500×375, two classes) generated under bench-output/images
#   BENCH_SIZES (default "224 150")
#   BENCH_REPEATS (default 3)     rounds of (extract, ORT[, extract bf16, OpenVINO bf16, OpenVINO f32]),
#                                 alternating; the table shows the best round of each, as other processes on
#                                 the machine can only slow a round down, and min/median/max
#   BENCH_CPUS (default: all)     the cores every engine is pinned to (taskset -c), e.g. "0-1"
#   BENCH_BF16 (default: 1 when the CPU has avx512_bf16)   0 skips the bf16 and OpenVINO runs
#   OPENVINO_FP32 (default 1)     0 skips OpenVINO's f32 run
#   BENCH_EXTRACT_ARGS            extra arguments for `extract`, e.g. "--workers 1 --threads 2", or
#                                 "--shard-size 8": shards of a multiple of ConvBase.recommendedBatch (4) images
#                                 leave no partial groups (the default for 384 images is 6 per shard)
#   ORT_THREADS (default 2)       ONNX Runtime intra-op threads
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh python3-venv
bin=$(swift build -c release --show-bin-path)
coordinator="$bin/bottleneck-coordinator"
dev="$bin/bottleneck-dev"
out=bench-output
images=${BENCH_IMAGES:-384}
read -ra sizes <<<"${BENCH_SIZES:-224 150}"
repeats=${BENCH_REPEATS:-3}
cpus=${BENCH_CPUS:-0-$(($(nproc) - 1))}
bf16=${BENCH_BF16:-$(grep -q avx512_bf16 /proc/cpuinfo && echo 1 || echo 0)}
pin=(taskset -c "$cpus")
mkdir -p "$out"

venv="$out/.venv"
if [ ! -f "$venv/.installed-openvino" ]; then
    echo "== creating $venv (onnx onnxruntime openvino numpy h5py pillow from PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check onnx onnxruntime openvino numpy h5py pillow
    touch "$venv/.installed" "$venv/.installed-openvino"
fi
py="$venv/bin/python"

tree="$out/images-$images/train"
echo "== $images JPEG images 500×375 in $tree"
"$py" scripts/bench/make_images.py "$tree" "$images"

weights="$out/vgg16-generated-seed1.h5"
[ -f "$weights" ] || "$coordinator" generate-weights --output "$weights" --seed 1 >/dev/null

for size in "${sizes[@]}"; do
    # A run's report reads only this run's rounds (not, say, bf16 rounds left by an earlier run with BENCH_BF16=1).
    rm -f "$out"/extract-"$size"-*.json* "$out"/extract-bf16-"$size"-*.json* "$out"/ort-"$size"-*.json \
        "$out"/openvino-*-"$size"-*.json
    for rep in $(seq "$repeats"); do
        echo "== $size×$size, round $rep/$repeats: extract (end to end)"
        # shellcheck disable=SC2086
        "$py" scripts/bench/run_extract.py "$out/extract-$size-$rep.json" -- "${pin[@]}" "$coordinator" extract \
            --train "$tree" \
            --weights "$weights" --output "$out/features-$size.h5" --image-size "$size" --restart --json-progress \
            ${BENCH_EXTRACT_ARGS:-}
        grep -ho "OpenBLAS kernels: .*" "$out/extract-$size-$rep.json.stderr" | sort -u | sed 's/^/   /' || true
        echo "== $size×$size, round $rep/$repeats: ONNX Runtime (${ORT_THREADS:-2} threads, batch 8, decoded input)"
        "${pin[@]}" "$py" scripts/bench/ort_runner.py --weights "$weights" --features "$out/features-$size.h5" \
            --tree "$tree" --size "$size" --threads "${ORT_THREADS:-2}" > "$out/ort-$size-$rep.json"
        if [ "$bf16" = 1 ]; then
            echo "== $size×$size, round $rep/$repeats: extract --precision bf16 (end to end)"
            # shellcheck disable=SC2086
            "$py" scripts/bench/run_extract.py "$out/extract-bf16-$size-$rep.json" -- "${pin[@]}" "$coordinator" \
                extract --train "$tree" --weights "$weights" --output "$out/features-bf16-$size.h5" \
                --image-size "$size" --restart --json-progress --precision bf16 ${BENCH_EXTRACT_ARGS:-}
            for precision in bf16 $([ "${OPENVINO_FP32:-1}" = 1 ] && echo f32); do
                echo "== $size×$size, round $rep/$repeats: OpenVINO $precision (${ORT_THREADS:-2} threads, batch 8)"
                "${pin[@]}" "$py" scripts/bench/openvino_runner.py --weights "$weights" \
                    --features "$out/features-bf16-$size.h5" --tree "$tree" --size "$size" \
                    --precision "$precision" --threads "${ORT_THREADS:-2}" > "$out/openvino-$precision-$size-$rep.json"
            done
        fi
    done
    core=$(grep -ho "OpenBLAS kernels: [A-Za-z0-9]*" "$out/extract-$size-1.json.stderr" | head -1 | awk '{print $3}')
    echo "== $size×$size: conv base alone, fast path vs reference path (OpenBLAS ${core:-default})"
    OPENBLAS_CORETYPE=${core:-${OPENBLAS_CORETYPE:-}} "$dev" bench-engine --weights "$weights" \
        --image-size "$size" --images 3 > "$out/engine-$size.json"
done

"$py" scripts/bench/report.py "$out" "$repeats" "${sizes[@]}"

# ---- top model: a training epoch against tf-keras' fit, side by side (its own script; BENCH_TOP=0 skips it) ----
if [ "${BENCH_TOP:-1}" = 1 ]; then
    scripts/bench-topmodel.sh
fi
