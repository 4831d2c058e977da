#!/usr/bin/env bash
# `make bench-finetune`: one fine-tuning epoch (block5 + top, the layers up to block4_pool frozen) at 150×150 of
# this project's `finetune` against tf-keras' `fit` on the same images, augmentation (shear 0.2, zoom 0.2,
# horizontal flip), batch size, starting weights and cores, side by side in one run. Prints images/s of each
# and how our epoch splits between the frozen pass (with augmentation and preprocessing), block5 + top, and
# communication; then the same epoch with `--workers` (one local worker per core), its traffic counted at the
# coordinator's socket.
#
# How the split is measured: an epoch with `--augment none` trains on frozen features computed once before the
# first epoch (outside the epoch's time), so its time is block5 + top alone; the augmented epoch's remainder is
# the frozen pass with augmentation and preprocessing. The top model's share of block5 + top is not timed
# separately (see BENCHMARKS.md for its operation count).
#
# Needs the release build (make bench-finetune builds it), python3 with venv, and PyPI (first run only:
# tensorflow-cpu, tf-keras, numpy, h5py, pillow, scipy into bench-output/.venv-tf). Environment knobs:
#   BENCH_FT_IMAGES (default 64)    JPEGs (500×375, two classes) generated under bench-output/images-N
#   BENCH_FT_EPOCHS (default 2)     epochs of each run; the table shows the fastest epoch after the first
#                                   (Keras traces its graph in the first), or the only one
#   BENCH_FT_BATCH (default 32)     batch size of both
#   BENCH_FT_CORES (default: all)   cores both sides are confined to (taskset); Keras gets as many threads
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh python3-venv
bin=$(swift build -c release --show-bin-path)
coordinator="$bin/bottleneck-coordinator"
out=bench-output
images=${BENCH_FT_IMAGES:-64}
epochs=${BENCH_FT_EPOCHS:-2}
batch=${BENCH_FT_BATCH:-32}
cores=${BENCH_FT_CORES:-$(nproc)}
cpus="0-$((cores - 1))"
mkdir -p "$out/finetune"
cut -d' ' -f1-3 /proc/loadavg >"$out/finetune/load-start"

py=$(scripts/bench/tf-venv.sh)

tree="$out/images-$images/train"
echo "== $images JPEG images 500×375 in $tree"
"$py" scripts/bench/make_images.py "$tree" "$images"

weights="$out/vgg16-generated-seed1.h5"
[ -f "$weights" ] || "$coordinator" generate-weights --output "$weights" --seed 1 >/dev/null
run="$out/finetune"
echo "== top model (extract block5_pool features at 150×150, train 1 epoch)"
"$coordinator" extract --train "$tree" --weights "$weights" --output "$run/features.h5" --image-size 150 \
    --restart --force >/dev/null 2>"$run/extract.stderr"
"$coordinator" train --features "$run/features.h5" --output "$run/top.h5" --epochs 1 --force >/dev/null

finetune() {  # $1: name, then extra arguments
    local name=$1
    shift
    rm -f "$run/$name.h5" "$run/$name.h5.checkpoint.h5"
    taskset -c "$cpus" "$coordinator" finetune --train "$tree" --weights "$weights" --top-model "$run/top.h5" \
        --output "$run/$name.h5" --epochs "$epochs" --batch-size "$batch" --seed 0 "$@" \
        >"$run/$name.stdout" 2>"$run/$name.stderr"
}
echo "== finetune, augmented (shear 0.2, zoom 0.2, horizontal flip), $epochs epochs, cores $cpus"
finetune augmented
echo "== finetune, no augmentation (block5 + top on frozen features computed once)"
finetune frozen --augment none
echo "== finetune, augmented, $cores local workers (one core each; chunks of 8 images), cores $cpus"
finetune workers --workers "$cores"
# tf-keras with as many threads as cores, and (for the like-for-like line) with one, as our one process uses.
for threads in $(printf '%s\n' "$cores" 1 | sort -un); do
    echo "== tf-keras fit, augmented, $epochs epochs, $threads thread(s), cores $cpus"
    taskset -c "$cpus" "$py" scripts/bench/keras_finetune_epoch.py --tree "$tree" --weights "$weights" \
        --top "$run/top.h5" --epochs "$epochs" --batch "$batch" --threads "$threads" >"$run/keras-$threads.json" \
        2>"$run/keras-$threads.stderr"
done
"$py" scripts/bench/finetune_report.py "$run" "$images" "$batch" "$cores"
