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
    with open(os.path.join(run, "keras.json")) as f:
        keras = json.load(f)
    theirs = typical(keras["epoch_seconds"])
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"\nfine-tuning epoch, {images} images 150x150, batch {batch}, {cores} core(s); "
          f"load average {' '.join(load)} at the end")
    print(f"{'':34} {'s/epoch':>9} {'images/s':>9}")
    print(f"{'bottleneck finetune (1 process)':34} {ours:9.2f} {images / ours:9.1f}")
    print(f"{'tf-keras ' + keras['tf_keras'] + ' fit (' + str(keras['threads']) + ' threads)':34} "
          f"{theirs:9.2f} {images / theirs:9.1f}")
    print(f"ratio (tf-keras time / ours): {theirs / ours:.2f}")
    frozen = max(0.0, ours - block5_top)
    print("our epoch split:")
    print(f"  frozen pass blocks 1-4 (with augmentation, preprocessing) {frozen:7.2f} s  {100 * frozen / ours:5.1f} %")
    print(f"  block5 + top forward/backward and step                   {block5_top:7.2f} s  "
          f"{100 * block5_top / ours:5.1f} %")
    print("  communication                                              0.00 s    0.0 % (one process, no workers)")
    for note in keras.get("notes", []):
        print(f"note: {note}")


if __name__ == "__main__":
    main()
