"""Prints the `make bench` table from the JSON files of one run.

Usage: report.py OUT_DIR REPEATS SIZE...
Per size: the best round of each engine (images/s), their ratio, images per CPU-second of each (insensitive to
other processes sharing the cores; ours counts the coordinator and every worker), the workers' peak RSS, and
the feature cross-checks. Then the conv base's per-layer GFLOP/s on one thread.
"""
import json
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
    with open(f"{out}/summary.json", "w") as handle:
        json.dump(summary, handle)


if __name__ == "__main__":
    main()
