#!/usr/bin/env python3
"""Times opening a virtual feature file of the layout `extract --assemble virtual` writes, at a large image count.

Usage: scripts/bench-virtual-open.py DIRECTORY [IMAGES] [SKIP_EVERY]

Writes DIRECTORY/out.h5 whose train/features map onto DIRECTORY/out.h5.parts/part-train-NNNNNN.h5 (10,000 rows of
7x7x512 float32 each, contiguous and never written, so sparse), one mapping per run of rows between skipped images
(one image in SKIP_EVERY is left out; 0: none), then times in fresh processes: opening the file and reading the
dataset's shape, and reading one row from its middle. Prints the figures; asserts nothing.
"""
import os
import subprocess
import sys
import time

import h5py
import numpy as np

directory = sys.argv[1]
images = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000
skip_every = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
rows_per_part = 10_000
shape = (7, 7, 512)
parts = os.path.join(directory, "out.h5.parts")
os.makedirs(parts, exist_ok=True)

started = time.time()
kept = [i for i in range(images) if not (skip_every and i % skip_every == skip_every - 1)] if skip_every else None
count = len(kept) if kept is not None else images
layout = h5py.VirtualLayout(shape=(count,) + shape, dtype="<f4")
row = 0
mappings = 0
for k in range((images + rows_per_part - 1) // rows_per_part):
    start = k * rows_per_part
    rows = min(rows_per_part, images - start)
    name = f"part-train-{k:06d}.h5"
    with h5py.File(os.path.join(parts, name), "w", track_order=False) as f:
        f.create_dataset("features", shape=(rows,) + shape, dtype="<f4")
    source = h5py.VirtualSource(os.path.join("out.h5.parts", name), "features", shape=(rows,) + shape)
    run = 0
    for offset in range(rows + 1):
        skipped = offset == rows or (skip_every and (start + offset) % skip_every == skip_every - 1)
        if skipped:
            if offset > run:
                layout[row : row + offset - run] = source[run:offset]
                row += offset - run
                mappings += 1
            run = offset + 1
with h5py.File(os.path.join(directory, "out.h5"), "w") as f:
    f.create_virtual_dataset("train/features", layout, fillvalue=0)
    f.create_dataset("train/labels", data=np.zeros(count, dtype="<i4"))
print(f"wrote {count} rows in {mappings} mappings over {k + 1} part files in {time.time() - started:.1f} s")

probe = """
import sys, time
t = time.time()
import h5py
t0 = time.time()
f = h5py.File(sys.argv[1], "r")
d = f["train/features"]
shape = d.shape
t1 = time.time()
row = d[shape[0] // 2]
t2 = time.time()
print(f"open+shape {t1 - t0:.3f} s, one row {t2 - t1:.3f} s, shape {shape}")
"""
for attempt in range(3):
    result = subprocess.run(
        [sys.executable, "-c", probe, os.path.join(directory, "out.h5")], capture_output=True, text=True, cwd="/"
    )
    print(result.stdout.strip() or result.stderr.strip())
