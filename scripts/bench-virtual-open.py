#!/usr/bin/env python3
"""Times opening a virtual feature file of the layout `extract --assemble virtual` writes, at a large image count.

Usage: scripts/bench-virtual-open.py DIRECTORY [IMAGES] [SKIP_EVERY] [LAYOUT]

Writes DIRECTORY/out.h5 whose train/features map onto DIRECTORY/out.h5.parts/part-train-NNNNNN.h5 (10,000 rows of
7x7x512 float32 each, contiguous and never written, so sparse); one image in SKIP_EVERY is left out (0: none).
LAYOUT "parts" (the default, what `--assemble virtual` writes): one mapping per part file, its source selection the
union of the runs of rows between skipped images, its virtual rows one contiguous block; "runs" (the earlier
layout): one mapping per run. Then times in fresh processes: opening the file and reading the dataset's shape, and
reading one row from its middle, and checks that row's source. Prints the figures; asserts nothing.
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
layout_kind = sys.argv[4] if len(sys.argv) > 4 else "parts"
rows_per_part = 10_000
shape = (7, 7, 512)
parts = os.path.join(directory, "out.h5.parts")
os.makedirs(parts, exist_ok=True)


def is_skipped(index):
    return bool(skip_every) and index % skip_every == skip_every - 1


started = time.time()
count = images - (sum(1 for i in range(images) if is_skipped(i)) if skip_every else 0)
dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
dcpl.set_fill_value(np.zeros((), dtype="<f4"))
virtual_space = h5py.h5s.create_simple((count,) + shape)
row = 0
mappings = 0
part_count = (images + rows_per_part - 1) // rows_per_part
for k in range(part_count):
    start = k * rows_per_part
    rows = min(rows_per_part, images - start)
    name = f"part-train-{k:06d}.h5"
    if not os.path.exists(os.path.join(parts, name)):
        with h5py.File(os.path.join(parts, name), "w", track_order=False) as f:
            f.create_dataset("features", shape=(rows,) + shape, dtype="<f4")
    source_name = os.path.join("out.h5.parts", name).encode()
    runs = []
    run = 0
    for offset in range(rows + 1):
        if offset == rows or is_skipped(start + offset):
            if offset > run:
                runs.append((run, offset))
            run = offset + 1
    groups = [runs] if layout_kind == "parts" else [[r] for r in runs]
    for group in groups:
        kept = sum(b - a for a, b in group)
        if kept == 0:
            continue
        source_space = h5py.h5s.create_simple((rows,) + shape)
        source_space.select_none()
        for a, b in group:
            source_space.select_hyperslab((a, 0, 0, 0), (b - a,) + shape, op=h5py.h5s.SELECT_OR)
        virtual_space.select_hyperslab((row, 0, 0, 0), (kept,) + shape)
        dcpl.set_virtual(virtual_space, source_name, b"features", source_space)
        row += kept
        mappings += 1
with h5py.File(os.path.join(directory, "out.h5"), "w") as f:
    group = f.create_group("train")
    virtual_space.select_all()
    h5py.h5d.create(group.id, b"features", h5py.h5t.py_create(np.dtype("<f4")), virtual_space, dcpl=dcpl)
    group.create_dataset("labels", data=np.zeros(count, dtype="<i4"))
print(f"wrote {count} rows in {mappings} mappings ({layout_kind}) over {part_count} part files in "
      f"{time.time() - started:.1f} s")

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
