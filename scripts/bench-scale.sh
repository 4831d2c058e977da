#!/usr/bin/env bash
# `make bench-scale`: the real coordinator (release build) against `bottleneck-loadgen`'s simulated workers on
# 127.0.0.1. Prints figures, asserts nothing. Scenarios (SCALE_SCENARIOS, default "a b c d"):
#   a  --shared-filesystem, SCALE_WORKERS workers at SCALE_RATE images/s each, a SCALE_ROWS_SHARED-row list of
#      files that do not exist (the workers never read them), weights `generate-weights --widths 8 …`, 32×32:
#      wall time, images/s, the coordinator's CPU seconds and peak RSS; the output checked (row r = r % 4096).
#   b  plain mode (the coordinator reads the images and receives the features): a SCALE_ROWS_PLAIN-row list naming
#      one tiny JPEG, 224×224 with a last conv width of 512, so 7×7×512 features (100 KB) per image cross the wire.
#   c  like a with SCALE_ROWS_RESUME rows: kill -9 of the coordinator at about 40 %, the same command again: seconds
#      to its "resuming" note and to the first shard a worker receives, then the whole run and the output checked.
#   d  a SCALE_ROWS_LARGE-row list (10 million by default): seconds to the first shard, the coordinator's RSS
#      after SCALE_LARGE_SECONDS of work, kill -9, rerun: seconds to "resuming" and to the first new shard, then
#      SIGTERM (the job is not run to its end). With SCALE_LARGE_FILL=F (e.g. 0.9), the journal is first filled up to
#      that share of the shards, as if the job had been killed near its end: log lines as the coordinator writes them
#      (placeholder hashes, rows never written) and copies of the first part file (sparse); the rerun is stopped
#      before assembly, which would find the hashes wrong.
# The coordinator's CPU time and peak RSS (VmHWM) come from /proc/PID while it runs. Everything goes under
# SCALE_OUTPUT (default bench-output/scale): the lists, the outputs, each process's log. SCALE_BIN: the directory of
# the binaries (default: the release build's).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SCALE_BIN:-$(swift build -c release --show-bin-path)}
coordinator="$bin/bottleneck-coordinator"
loadgen="$bin/bottleneck-loadgen"
out=${SCALE_OUTPUT:-bench-output/scale}
workers=${SCALE_WORKERS:-1000}
rate=${SCALE_RATE:-20}
rows_shared=${SCALE_ROWS_SHARED:-2000000}
rows_plain=${SCALE_ROWS_PLAIN:-60000}
rows_resume=${SCALE_ROWS_RESUME:-500000}
rows_large=${SCALE_ROWS_LARGE:-10000000}
large_seconds=${SCALE_LARGE_SECONDS:-60}
scenarios=${SCALE_SCENARIOS:-"a b c d"}
port=${SCALE_PORT:-5791}
read -ra extra <<<"${SCALE_EXTRACT_OPTIONS:-}"
endpoint="tcp://127.0.0.1:$port"
ticks=$(getconf CLK_TCK)
mkdir -p "$out"
out=$(cd "$out" && pwd)

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"

if [ ! -f "$out/w8.h5" ]; then
    "$coordinator" generate-weights --output "$out/w8.h5" --widths 8 8 8 8 8 8 8 8 8 8 8 8 8 >/dev/null
fi
if [ ! -f "$out/w512.h5" ]; then
    "$coordinator" generate-weights --output "$out/w512.h5" --widths 8 8 8 8 8 8 8 8 8 8 8 8 512 >/dev/null
fi
# The coordinator reads this file for every row in plain mode; the simulated workers never decode it.
cp Tests/ImageInputTests/Fixtures/decode/tiny1x1.jpg "$out/one.jpg"

# make_list ROWS FILE unique|one: a CSV list; unique names files that do not exist (shared mode), one names
# one.jpg on every row (plain mode).
make_list() {
    [ -f "$2" ] && return 0
    python3 - "$1" "$2" "$3" <<'EOF'
import sys
rows, path, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(path, "w", buffering=1 << 22) as f:
    f.write("filename,class\n")
    block = []
    for i in range(rows):
        block.append(f"c{i % 10}/img-{i}.jpg,c{i % 10}\n" if kind == "unique" else f"one.jpg,c{i % 10}\n")
        if len(block) == 100000:
            f.write("".join(block))
            block = []
    f.write("".join(block))
EOF
}

# fill_journal PARTS_DIRECTORY SHARE: records shards as done up to SHARE of them (scenario d with SCALE_LARGE_FILL).
fill_journal() {
    python3 - "$1" "$2" <<'EOF'
import json, os, shutil, sys
parts, share = sys.argv[1], float(sys.argv[2])
manifest = json.load(open(os.path.join(parts, "manifest.json")))
rows_per_part, shards = manifest["rowsPerPart"], manifest["shards"]
row_bytes = 4
for side in manifest["featureShape"]:
    row_bytes *= side
log = os.path.join(parts, "journal.log")
done, template = set(), None
for line in open(log):
    event = json.loads(line)
    if "done" in event:
        done.add(event["done"]["shard"])
        template = event["done"]
data_offset = template["location"]["offset"] - (template["start"] % rows_per_part) * row_bytes
first_part = os.path.join(parts, "part-train-000000.h5")
last_range = (manifest["splits"][0]["imageCount"] - 1) // rows_per_part
wanted = int(len(shards) * share) - len(done)
with open(log, "a") as out:
    for shard in shards:
        if wanted <= 0:
            break
        index = shard["start"] // rows_per_part
        if shard["id"] in done or shard["split"] != "train" or index == last_range:
            continue
        name = f"part-train-{index:06d}.h5"
        if not os.path.exists(os.path.join(parts, name)):
            shutil.copyfile(first_part, os.path.join(parts, name))
        record = {"count": shard["count"], "inputs": template["inputs"],
                  "location": {"offset": data_offset + (shard["start"] - index * rows_per_part) * row_bytes,
                               "part": name, "size": shard["count"] * row_bytes},
                  "sha256": "0" * 64, "shard": shard["id"], "skipped": [], "split": "train",
                  "start": shard["start"]}
        out.write(json.dumps({"done": record}, sort_keys=True, separators=(",", ":")) + "\n")
        wanted -= 1
EOF
}

# minus A B: A - B, two decimals.
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

# Prefixes each line with the wall-clock time (no fork per line).
stamp() { while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }

# watch PID FILE: samples the process's CPU seconds and peak RSS into FILE until it ends.
watch_process() {
    local pid=$1 file=$2 sample
    while [ -d "/proc/$pid" ]; do
        sample=$(awk -v t="$ticks" '{ printf "%.1f", ($14 + $15) / t }' "/proc/$pid/stat" 2>/dev/null) || break
        hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || break
        rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || break
        [ -n "$hwm" ] || break # a zombie has no memory lines: keep the last sample
        echo "$sample $hwm $rss" >"$file"
        sleep 0.5
    done
}

# start_coordinator NAME LIST WEIGHTS SIZE EXTRA...: sets $cpid (and $watcher).
start_coordinator() {
    local name=$1 list=$2 weights=$3 size=$4
    shift 4
    "$coordinator" extract --train-list "$list" --directory "$out" --weights "$weights" --image-size "$size" \
        --output "$out/$name.h5" --workers 0 --bind "$endpoint" --json-progress --keep-parts "${extra[@]}" "$@" \
        > >(stamp >>"$out/$name.progress") 2>>"$out/$name.err" &
    cpid=$!
    watch_process "$cpid" "$out/$name.proc" &
    watcher=$!
}

start_loadgen() {
    local name=$1
    shift
    "$loadgen" workers --connect "$endpoint" --workers "$workers" --images-per-second "$rate" \
        --give-up-after 300 "$@" >"$out/$name.loadgen" 2>"$out/$name.loadgen.err" &
    lpid=$!
}

# figures NAME SECONDS: the coordinator's summary and /proc samples, in two lines: the extraction phase (start to the
# last shard logged; its CPU seconds and peak RSS as the coordinator read them of itself at that moment) and the
# whole run (with the assembly of the feature file; CPU and peak RSS from /proc).
figures() {
    local name=$1 seconds=$2
    read -r cpu hwm _ <"$out/$name.proc" || true
    local summary
    summary=$( (grep '"event":"summary"' "$out/$name.progress" || true) | tail -1 | cut -d' ' -f2-)
    python3 - "$name" "$seconds" "${cpu:-?}" "${hwm:-0}" "$summary" <<'EOF'
import json, sys
name, seconds, cpu, hwm, summary = sys.argv[1:6]
s = json.loads(summary) if summary else {}
mib = lambda b: f"{int(b) / 2**20:.0f} MiB"
computed = sum(s.get("per_worker", {}).values())
extraction = s.get("extraction_seconds", 0)
if extraction:
    rate = computed / extraction
    print(f"{name}: extraction phase: {computed} images in {extraction:.1f} s, {rate:.0f} images/s; coordinator CPU "
          f"{s.get('extraction_cpu_seconds', '?')} s ({s.get('extraction_cpu_seconds', 0) / extraction:.2f} core), "
          f"peak RSS {mib(s.get('extraction_peak_rss_bytes', 0))}")
if s.get("result_bytes_budget"):
    print(f"{name}: result bytes: budget {mib(s['result_bytes_budget'])}, peak reserved "
          f"{mib(s.get('peak_result_bytes_reserved', 0))}, peak received and not yet written "
          f"{mib(s.get('peak_unwritten_bytes', 0))}")
print(f"{name}: whole run: {s.get('images', '?')} images in {float(seconds):.1f} s wall, assembly "
      f"{s.get('assembly_seconds', '?')} s ({s.get('images_per_second', '?')} images/s by the coordinator's clock, "
      f"assembly included), coordinator CPU {cpu} s, peak RSS {int(hwm) / 1024:.0f} MiB, "
      f"shards {s.get('shards_total', '?')} (resumed {s.get('shards_resumed', '?')}, retried "
      f"{s.get('shards_retried', '?')})")
EOF
    local lsummary
    lsummary=$( (grep '"event":"loadgen_summary"' "$out/$name.loadgen" || true) | tail -1)
    [ -n "$lsummary" ] && echo "$name: load generator: $lsummary"
    return 0
}

check_output() {
    "$loadgen" check "$out/$1.h5" || echo "$1: CHECK FAILED"
}

# first_time FILE PATTERN: the wall-clock stamp of the first line of FILE matching PATTERN.
first_time() { (grep -m1 -- "$2" "$1" || true) | cut -d' ' -f1; }

# first_shard_at LOG head|tail: the wall-clock time of the first (head) or last (tail) job's first shard.
first_shard_at() {
    (grep '"event":"first_shard"' "$1" || true) | "$2" -1 | (grep -o '"unix_time":[0-9.]*' || true) | cut -d: -f2
}

fresh() { rm -rf "$out/$1.h5" "$out/$1.h5.parts" "$out/$1.progress" "$out/$1.err" "$out/$1.proc"; }

run_whole() {
    local name=$1 list=$2 weights=$3 size=$4
    shift 4
    fresh "$name"
    local begin=$EPOCHREALTIME
    start_coordinator "$name" "$list" "$weights" "$size" "$@"
    start_loadgen "$name"
    wait "$cpid" || echo "$name: coordinator exit status $?"
    local end=$EPOCHREALTIME
    wait "$watcher" || true
    wait "$lpid" || true
    figures "$name" "$(minus "$end" "$begin")"
}

for scenario in $scenarios; do
    case $scenario in
    a)
        echo "== a: shared filesystem, $workers workers × $rate images/s, $rows_shared rows, 32×32, widths 8"
        make_list "$rows_shared" "$out/list-$rows_shared.csv" unique
        run_whole a "$out/list-$rows_shared.csv" "$out/w8.h5" 32 --shared-filesystem
        check_output a
        ;;
    b)
        echo "== b: plain mode, $workers workers × $rate images/s, $rows_plain rows of one JPEG, 7×7×512 features"
        make_list "$rows_plain" "$out/plain-$rows_plain.csv" one
        run_whole b "$out/plain-$rows_plain.csv" "$out/w512.h5" 224
        check_output b
        ;;
    c)
        echo "== c: kill -9 at ~40 % of $rows_resume rows (shared filesystem), then the same command again"
        make_list "$rows_resume" "$out/list-$rows_resume.csv" unique
        fresh c
        start_loadgen c
        start_coordinator c "$out/list-$rows_resume.csv" "$out/w8.h5" 32 --shared-filesystem
        target=$((rows_resume * 2 / 5))
        while kill -0 "$cpid" 2>/dev/null; do
            done_now=$( (grep -o '"images_done":[0-9]*' "$out/c.progress" 2>/dev/null || true) | tail -1 | cut -d: -f2)
            [ "${done_now:-0}" -ge "$target" ] && break
            sleep 0.2
        done
        kill -9 "$cpid" 2>/dev/null || true
        wait "$cpid" 2>/dev/null || true
        wait "$watcher" || true
        echo "c: killed at ${done_now:-?} of $rows_resume images"
        mv "$out/c.progress" "$out/c.first.progress"
        begin=$EPOCHREALTIME
        start_coordinator c "$out/list-$rows_resume.csv" "$out/w8.h5" 32 --shared-filesystem
        wait "$cpid" || echo "c: coordinator exit status $?"
        end=$EPOCHREALTIME
        wait "$watcher" || true
        wait "$lpid" || true
        resuming=$(first_time "$out/c.progress" '"resuming')
        first=$(first_shard_at "$out/c.loadgen" tail)
        echo "c: rerun to \"resuming\": $(minus "${resuming:-$begin}" "$begin") s; to the first new shard:" \
            "$(minus "${first:-$begin}" "$begin") s"
        figures c "$(minus "$end" "$begin")"
        check_output c
        ;;
    d)
        echo "== d: $rows_large rows (shared filesystem): start-up, RSS after ${large_seconds} s, kill -9, resume"
        make_list "$rows_large" "$out/list-$rows_large.csv" unique
        fresh d
        start_loadgen d
        begin=$EPOCHREALTIME
        start_coordinator d "$out/list-$rows_large.csv" "$out/w8.h5" 32 --shared-filesystem
        until grep -q '"event":"first_shard"' "$out/d.loadgen" 2>/dev/null || ! kill -0 "$cpid" 2>/dev/null; do
            sleep 0.2
        done
        first=$(first_shard_at "$out/d.loadgen" head)
        echo "d: start to the first shard: $(minus "${first:-$begin}" "$begin") s"
        sleep "$large_seconds"
        read -r cpu hwm rss <"$out/d.proc" || true
        done_now=$( (grep -o '"images_done":[0-9]*' "$out/d.progress" 2>/dev/null || true) | tail -1 | cut -d: -f2)
        echo "d: after ${large_seconds} s of work: ${done_now:-?} images done, coordinator RSS $((${rss:-0} / 1024)) MiB," \
            "peak $((${hwm:-0} / 1024)) MiB, CPU ${cpu:-?} s"
        kill -9 "$cpid" 2>/dev/null || true
        wait "$cpid" 2>/dev/null || true
        wait "$watcher" || true
        mv "$out/d.progress" "$out/d.first.progress"
        if [ -n "${SCALE_LARGE_FILL:-}" ]; then
            fill_journal "$out/d.h5.parts" "$SCALE_LARGE_FILL"
        fi
        echo "d: journal log $(($(stat -c %s "$out/d.h5.parts/journal.log") / 1000000)) MB," \
            "$(wc -l <"$out/d.h5.parts/journal.log") lines"
        seen=$(grep -c '"event":"first_shard"' "$out/d.loadgen" || true)
        begin=$EPOCHREALTIME
        start_coordinator d "$out/list-$rows_large.csv" "$out/w8.h5" 32 --shared-filesystem
        until [ "$(grep -c '"event":"first_shard"' "$out/d.loadgen" || true)" -gt "$seen" ] \
            || ! kill -0 "$cpid" 2>/dev/null; do
            sleep 0.2
        done
        resuming=$(first_time "$out/d.progress" '"resuming')
        first=$(first_shard_at "$out/d.loadgen" tail)
        echo "d: rerun to \"resuming\": $(minus "${resuming:-$begin}" "$begin") s; to the first new shard:" \
            "$(minus "${first:-$begin}" "$begin") s"
        sleep 5
        read -r cpu hwm rss <"$out/d.proc" || true
        echo "d: rerun peak RSS $((${hwm:-0} / 1024)) MiB, CPU ${cpu:-?} s"
        kill -TERM "$cpid" 2>/dev/null || true
        wait "$cpid" 2>/dev/null || true
        wait "$watcher" || true
        kill -TERM "$lpid" 2>/dev/null || true
        wait "$lpid" 2>/dev/null || true
        ;;
    *) echo "unknown scenario $scenario (a b c d)" >&2 ;;
    esac
done
echo "== load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
