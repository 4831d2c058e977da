#!/usr/bin/env bash
# The top model's training epoch against tf-keras' `fit`, side by side (part of `make bench`; scripts/bench.sh
# calls it): 10,000 feature vectors of 4×4×512 (the same numbers on both sides: `bottleneck-dev bench-topmodel
# --features-out` writes them, tf-keras reads them), 3 classes, Flatten → Dense 256 relu → Dropout 0.5 → Dense 3
# softmax, SGD, batch 100, shuffled. Both run under `taskset -c $BENCH_CPUS` with the same thread count, in
# alternating rounds (ours, ours with the dense kernel gradient of before, then tf-keras). A round's figure is the median of its epochs after the first (tf-keras
# traces its graph in the first); prints each side's min/median/max over the rounds and the ratios, and the load
# average before and after.
#
# Needs the release build (make bench builds it), python3 with venv, and PyPI on the first run
# (scripts/bench/tf-venv.sh). Environment knobs:
#   BENCH_TOP_REPEATS (default 3)   rounds
#   BENCH_TOP_EPOCHS (default 4)    epochs per run
#   BENCH_TOP_THREADS (default 2)   threads of both (our trainer; tf-keras' intra- and inter-op pools)
#   BENCH_CPUS (default: all)       the cores both are pinned to (taskset -c), e.g. "0-1"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh python3-venv
dev="$(swift build -c release --show-bin-path)/bottleneck-dev"
out=bench-output/topmodel
repeats=${BENCH_TOP_REPEATS:-3}
epochs=${BENCH_TOP_EPOCHS:-4}
threads=${BENCH_TOP_THREADS:-2}
cpus=${BENCH_CPUS:-0-$(($(nproc) - 1))}
pin=(taskset -c "$cpus")
mkdir -p "$out"
py=$(scripts/bench/tf-venv.sh)
cut -d' ' -f1-3 /proc/loadavg >"$out/load-start"
features="$out/features-10000x8192.f32"
[ -f "$features" ] || "$dev" bench-topmodel --rows 10000 --features-out "$features"
for rep in $(seq "$repeats"); do
    echo "== top model, round $rep/$repeats: bottleneck ($threads threads, $epochs epochs, cores $cpus)"
    "${pin[@]}" "$dev" bench-topmodel --rows 10000 --epochs "$epochs" --threads "$threads" >"$out/ours-$rep.json"
    echo "== top model, round $rep/$repeats: bottleneck, dense kernel gradient (the zero gradients not skipped)"
    "${pin[@]}" "$dev" bench-topmodel --rows 10000 --epochs "$epochs" --threads "$threads" --dense \
        >"$out/dense-$rep.json"
    echo "== top model, round $rep/$repeats: tf-keras fit ($threads threads, $epochs epochs, cores $cpus)"
    "${pin[@]}" "$py" scripts/topmodel_keras_epoch_time.py --epochs "$epochs" --threads "$threads" \
        --features "$features" >"$out/keras-$rep.json" 2>"$out/keras-$rep.stderr"
done
cut -d' ' -f1-3 /proc/loadavg >"$out/load-end"
"$py" - "$out" "$repeats" <<'PY'
import json, statistics, sys
out, repeats = sys.argv[1], int(sys.argv[2])
def rounds(name, key="epoch_seconds"):
    runs = [json.load(open(f"{out}/{name}-{r}.json")) for r in range(1, repeats + 1)]
    figures = [statistics.median(run[key][1:] or run[key]) for run in runs]
    return runs[0], sorted(figures)
ours_run, ours = rounds("ours")
dense_run, dense = rounds("dense")
keras_run, keras = rounds("keras")
cpu = {name: rounds(name, "epoch_cpu_seconds")[1] for name in ["ours", "dense", "keras"]}
print(f"\nTop model epoch, 10,000 × 4×4×512, batch 100, SGD, {ours_run['threads']} threads; features "
      f"{ours_run['zero_fraction'] * 100:.1f} % zero; median of the epochs after the first, "
      f"min/median/max of {repeats} rounds:")
mmm = lambda v: f"{v[0]:.3f} / {statistics.median(v):.3f} / {v[-1]:.3f} s"
print(f"  bottleneck        {mmm(ours)}")
print(f"  (dense gradient   {mmm(dense)}: the skipped zeros save {1 - statistics.median(ours) / statistics.median(dense):.0%}"
      " on the medians)")
print(f"  {keras_run['engine']:<17} {mmm(keras)}")
print(f"  ratio (tf-keras / ours): {keras[0] / ours[0]:.2f}× on the minima, "
      f"{statistics.median(keras) / statistics.median(ours):.2f}× on the medians")
print(f"  CPU seconds per epoch (all threads), min/median/max: ours {mmm(cpu['ours'])}, dense gradient "
      f"{mmm(cpu['dense'])}, tf-keras {mmm(cpu['keras'])}")
print(f"  first-epoch losses: ours {ours_run['loss'][0]:.4f}, tf-keras {keras_run['loss'][0]:.4f}")
print(f"  load average (1/5/15 min) before {open(out + '/load-start').read().strip()}, "
      f"after {open(out + '/load-end').read().strip()}")
PY
