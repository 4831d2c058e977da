"""Prints the `make bench` table from the JSON files of one run.

Usage: report.py OUT_DIR REPEATS SIZE...
Per size: the best round of each engine (images/s), their ratio, images per CPU-second of each (insensitive to
other processes sharing the cores; ours counts the coordinator and every worker), the workers' peak RSS, and
the feature cross-checks. Then the conv base's per-layer GFLOP/s on one thread.
"""
import json
import os
import statistics
import sys


def load(path):
    with open(path) as handle:
        return json.load(handle)


def main():
    out, repeats, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    with open("/proc/cpuinfo") as handle:
        lines = handle.readlines()
    cpu = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), "?")
    cores = sum(1 for l in lines if l.startswith("processor"))
    print(f"\nCPU: {cpu}, {cores} logical cores; best of {repeats} alternating rounds")
    head = (f"{'size':>5} {'ours img/s':>10} {'ORT img/s':>9} {'ratio':>6} | {'steady':>6} {'ratio':>6} | {'ours img/CPU-s':>14} "
            f"{'ORT img/CPU-s':>13} {'ratio':>6} | {'worker RSS':>10} {'fast vs ref':>11} {'ORT vs ours':>11}  OpenBLAS")
    print(head)
    print("-" * len(head))
    summary = {}
    for size in sizes:
        ours = [load(f"{out}/extract-{size}-{r}.json") for r in range(1, repeats + 1)]
        ort = [load(f"{out}/ort-{size}-{r}.json") for r in range(1, repeats + 1)]
        engine = load(f"{out}/engine-{size}.json")
        images = ort[0]["images"]
        if any(o["exit_status"] != 0 for o in ours):
            print(f"{size}: extract failed (see {out}/extract-{size}-*.json.stderr)")
            continue
        ours_rate = max(images / o["wall_seconds"] for o in ours)
        ort_rate = max(o["images_per_second"] for o in ort)
        ours_cpu = max(images / o["cpu_seconds"] for o in ours)
        ort_cpu = max(images / o["cpu_seconds"] for o in ort)
        rss = max(o["worker_peak_rss_mib"] for o in ours)
        steady = max((o.get("steady_images_per_second") or 0) for o in ours)
        start = min((o.get("first_results_seconds") or 0) for o in ours)
        cross = max(o["max_relative_error_vs_extract"] for o in ort)
        ratio = ours_rate / ort_rate
        summary[size] = {"ours": ours_rate, "ort": ort_rate, "ratio": ratio, "cpu_ratio": ours_cpu / ort_cpu,
                         "steady": steady, "steady_ratio": steady / ort_rate, "first_results_seconds": start,
                         "worker_peak_rss_mib": rss}
        print(f"{size:>5} {ours_rate:10.1f} {ort_rate:9.1f} {ratio:6.2f} | {steady:6.1f} {steady / ort_rate:6.2f} | "
              f"{ours_cpu:14.2f} {ort_cpu:13.2f} "
              f"{ours_cpu / ort_cpu:6.2f} | {rss:6.0f} MiB {engine['max_relative_error_fast_vs_reference']:11.1e} "
              f"{cross:11.1e}  {engine['openblas_core']}")
    for size in sizes:
        engine = load(f"{out}/engine-{size}.json")
        print(f"\nconv base alone at {size}×{size}, one thread ({engine['openblas_core']} kernels): "
              "GFLOP/s per layer, counted as direct convolution")
        for algorithm in ("direct", "adaptive"):
            layers = [next(iter(d.items())) for d in engine[algorithm]["gflops_per_second_by_layer"]]
            print(f"  {algorithm:9} {engine[algorithm]['ms_per_image']:6.1f} ms/image  "
                  + " ".join(f"{name.replace('block', 'b').replace('_conv', '.')}:{g:.0f}" for name, g in layers))
    print("\nours: wall clock of the whole `extract` command (start-up, decode, resize, HDF5 write included)."
          " steady: ours from the first finished images to the end (start-up excluded, tail included)."
          " ORT: inference only, on decoded float32 input, batch 8 after a warm-up batch."
          "\nimg/CPU-s: images per CPU-second (all our processes; ORT's process). fast vs ref: the default"
          " algorithm against im2col+sgemm on random images; ORT vs ours: the two engines' features on the"
          " same JPEGs; both max |difference| / max |reference|.")
    ratios(out, repeats, sizes, summary)
    with open(f"{out}/summary.json", "w") as handle:
        json.dump(summary, handle)


def spread(values):
    """min / median / max of a list, as text."""
    ordered = sorted(values)
    return f"{ordered[0]:6.1f} {statistics.median(ordered):6.1f} {ordered[-1]:6.1f}"


def ratios(out, repeats, sizes, summary):
    """Our fp32 against ORT, our bf16 against OpenVINO's bf16 (and OpenVINO's f32 when run): images/s as
    min / median / max of the rounds, and the ratio of the best rounds."""
    rounds = range(1, repeats + 1)
    if not os.path.exists(f"{out}/extract-bf16-{sizes[0]}-1.json"):
        return
    print(f"\nimages/s, min / median / max of {repeats} rounds; ratio: best round against best round")
    head = f"{'size':>5} {'engine':<22} {'min':>6} {'median':>6} {'max':>6}   ratio"
    print(head)
    print("-" * len(head))
    for size in sizes:
        ours = [load(f"{out}/extract-{size}-{r}.json") for r in rounds]
        ort = [load(f"{out}/ort-{size}-{r}.json") for r in rounds]
        images = ort[0]["images"]
        ours_bf16 = [load(f"{out}/extract-bf16-{size}-{r}.json") for r in rounds]
        if any(o["exit_status"] != 0 for o in ours + ours_bf16):
            print(f"{size}: extract failed (see {out}/extract-*{size}-*.json.stderr)")
            continue
        ovino = [load(f"{out}/openvino-bf16-{size}-{r}.json") for r in rounds]
        ov_f32_paths = [f"{out}/openvino-f32-{size}-{r}.json" for r in rounds]
        ov_f32 = [load(p) for p in ov_f32_paths if os.path.exists(p)]
        rows = [
            ("ours fp32 (end to end)", [images / o["wall_seconds"] for o in ours]),
            ("ORT fp32 (inference)", [o["images_per_second"] for o in ort]),
            ("ours bf16 (end to end)", [images / o["wall_seconds"] for o in ours_bf16]),
            ("OpenVINO bf16 (infer.)", [o["images_per_second"] for o in ovino]),
        ]
        if ov_f32:
            rows.append(("OpenVINO f32 (infer.)", [o["images_per_second"] for o in ov_f32]))
        for name, values in rows:
            ratio = ""
            if name.startswith("ours fp32"):
                ratio = f"{max(values) / max(rows[1][1]):5.2f} of ORT"
            elif name.startswith("ours bf16"):
                ratio = f"{max(values) / max(rows[3][1]):5.2f} of OpenVINO bf16"
            print(f"{size:>5} {name:<22} {spread(values)}   {ratio}")
        rss = max(o["worker_peak_rss_mib"] for o in ours_bf16)
        error = max(o["max_relative_error_vs_extract"] for o in ovino)
        print(f"{size:>5} bf16 worker peak RSS {rss:.0f} MiB; OpenVINO bf16 vs our bf16 features: {error:.1e} "
              f"(OpenVINO {ovino[0]['openvino']}, execution precision {ovino[0]['execution_precision']})")
        summary.setdefault(size, {}).update({
            "ours_bf16": max(rows[2][1]), "openvino_bf16": max(rows[3][1]),
            "bf16_ratio": max(rows[2][1]) / max(rows[3][1]), "bf16_worker_peak_rss_mib": rss})


if __name__ == "__main__":
    main()
