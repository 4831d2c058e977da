"""Per-layer table of the conv base: time and fraction of the measured FMA peak, from `bench-engine` JSON.

Usage: layer_table.py PEAK_GFLOPS ENGINE_JSON...
PEAK_GFLOPS: one thread's fp32 FMA peak as `bottleneck-dev fma-peak` prints it. Each ENGINE_JSON is one line of
`bottleneck-dev bench-engine` (one thread, thread CPU time); with several, each layer's best GFLOP/s counts (other
processes only slow a run down). FLOPs are counted as direct convolution (H·W·9·Cin·Cout·2 per layer), so a
Winograd layer can exceed 100 % of the peak: the fraction says how far the layer is from what direct
convolution could reach at best on this core.
"""
import json
import sys

WIDTHS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 512), (512, 512),
          (512, 512), (512, 512), (512, 512), (512, 512)]
BLOCK_OF_LAYER = [1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]


def main():
    peak = float(sys.argv[1])
    runs = [json.loads(open(path).read()) for path in sys.argv[2:]]
    size = runs[0]["image_size"]
    names = [list(entry)[0] for entry in runs[0]["adaptive"]["gflops_per_second_by_layer"]]
    best = {name: max(dict(list(e.items())[0] for e in run["adaptive"]["gflops_per_second_by_layer"])[name]
                      for run in runs) for name in names}
    print(f"| layer ({size}×{size}) | map | direct-equivalent GFLOP | ms per image | GFLOP/s | of FMA peak |")
    print("|---|---|---|---|---|---|")
    total_ms = 0.0
    total_flops = 0.0
    for index, name in enumerate(names):
        side = size
        for _ in range(BLOCK_OF_LAYER[index] - 1):
            side //= 2
        cin, cout = WIDTHS[index]
        flops = side * side * 9 * cin * cout * 2
        ms = flops / (best[name] * 1e9) * 1e3
        total_ms += ms
        total_flops += flops
        print(f"| {name} | {side}×{side} | {flops / 1e9:.3f} | {ms:.1f} | {best[name]:.0f} | {best[name] / peak:.0%} |")
    rate = total_flops / (total_ms / 1e3) / 1e9
    print(f"| all 13 | | {total_flops / 1e9:.2f} | {total_ms:.1f} | {rate:.0f} | {rate / peak:.0%} |")


if __name__ == "__main__":
    main()
