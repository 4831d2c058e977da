"""Prints the table of `make bench-finetune` from the files of one run.

Usage: finetune_report.py RUN_DIR IMAGES BATCH CORES
RUN_DIR holds augmented.stdout and frozen.stdout (`finetune`'s epoch lines, `Epoch i/N - 12.3s - …`) and
keras.json (keras_finetune_epoch.py). Each side's epoch is the fastest after the first, or the only one.
"""
import json
import os
import re
import sys


def epoch_seconds(path):
    with open(path) as f:
        return [float(m.group(1)) for m in re.finditer(r"^Epoch \d+/\d+ - ([0-9.]+)s", f.read(), re.M)]


def typical(seconds):
    return min(seconds[1:]) if len(seconds) > 1 else seconds[0]


def main():
    run, images, batch, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    ours = typical(epoch_seconds(os.path.join(run, "augmented.stdout")))
    block5_top = typical(epoch_seconds(os.path.join(run, "frozen.stdout")))
    runs = []
    for name in sorted(os.listdir(run)):
        if name.startswith("keras-") and name.endswith(".json"):
            with open(os.path.join(run, name)) as f:
                runs.append(json.loads(f.read().strip().splitlines()[-1]))  # Keras prints "Found N images" first
    runs.sort(key=lambda k: -k["threads"])
    with open(os.path.join(run, "load-start")) as f:
        start = f.read().strip()
    with open("/proc/loadavg") as f:
        end = " ".join(f.read().split()[:3])
    print(f"\nfine-tuning epoch, {images} images 150x150, batch {batch}, {cores} core(s); "
          f"load average {start} at the start, {end} at the end")
    print(f"{'':40} {'s/epoch':>9} {'images/s':>9} {'tf-keras time / ours':>21}")
    print(f"{'bottleneck finetune (1 process, 1 thread)':40} {ours:9.2f} {images / ours:9.1f}")
    for keras in runs:
        theirs = typical(keras["epoch_seconds"])
        label = f"tf-keras {keras['tf_keras']} fit ({keras['threads']} thread{'s' if keras['threads'] > 1 else ''})"
        print(f"{label:40} {theirs:9.2f} {images / theirs:9.1f} {theirs / ours:21.2f}")
    frozen = max(0.0, ours - block5_top)
    print("our epoch split:")
    print(f"  frozen pass blocks 1-4 (with augmentation, preprocessing) {frozen:7.2f} s  {100 * frozen / ours:5.1f} %")
    print(f"  block5 + top forward/backward and step                   {block5_top:7.2f} s  "
          f"{100 * block5_top / ours:5.1f} %")
    print("  communication                                              0.00 s    0.0 % (one process, no workers)")
    workers_path = os.path.join(run, "workers.stdout")
    if os.path.exists(workers_path):
        with_workers = typical(epoch_seconds(workers_path))
        with open(workers_path) as f:
            traffic = next((line.strip() for line in f if line.startswith("traffic over")), "")
        print(f"{'bottleneck finetune --workers ' + str(cores):40} {with_workers:9.2f} {images / with_workers:9.1f}")
        for keras in runs:
            theirs = typical(keras["epoch_seconds"])
            print(f"  tf-keras ({keras['threads']} thread(s)) time / ours with workers: {theirs / with_workers:.2f}")
        print(f"  {traffic}")
    for note in sorted({n for keras in runs for n in keras.get("notes", [])}):
        print(f"note: {note}")


if __name__ == "__main__":
    main()
