"""OpenVINO on the same VGG16 conv base, ONNX model, weights and images as ort_runner.py, for `make bench`.

Usage: openvino_runner.py --weights W.h5 --features F.h5 --tree DIR --size N --precision bf16|f32
                          [--threads 2] [--batch 8]

The ONNX model is ort_runner.py's (built with onnx.helper from the official-layout Keras weights), the images
are decoded, resized and preprocessed as there, before timing. OpenVINO compiles it for the CPU with
INFERENCE_PRECISION_HINT (bf16 or f32), `threads` inference threads, one stream and the latency hint; it
warms up with one batch, then times every image in batches of `batch`. Then checks its features against the
feature file (the same images; its precision decides how close) and prints one JSON line.
"""
import argparse
import json
import time

import h5py
import numpy as np
import openvino as ov

from ort_runner import build_model, conv_layers, load_images


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True)
    parser.add_argument("--features", required=True)
    parser.add_argument("--tree", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--precision", choices=["bf16", "f32"], required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    with h5py.File(args.features, "r") as features_file:
        filenames = [f.decode() if isinstance(f, bytes) else f for f in features_file["train/filenames"][:]]
        ours = np.array(features_file["train/features"], dtype=np.float32)
    images = load_images(args.tree, filenames, args.size)

    core = ov.Core()
    onnx_model = build_model(conv_layers(args.weights), args.size)
    model = core.read_model(onnx_model.SerializeToString())
    batch = args.batch
    model.reshape([batch, 3, args.size, args.size])
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": args.precision,
        "INFERENCE_NUM_THREADS": args.threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
    })
    request = compiled.create_infer_request()
    output = compiled.outputs[0]

    def run(first):
        chunk = images[first:first + batch]
        if len(chunk) < batch:  # the static batch: pad the last one
            chunk = np.concatenate([chunk, np.zeros((batch - len(chunk),) + chunk.shape[1:], np.float32)])
        return request.infer({0: chunk})[output][:len(images) - first]

    run(0)  # warm-up
    outputs = []
    start = time.perf_counter()
    cpu_start = time.process_time()
    for first in range(0, len(images), batch):
        outputs.append(np.array(run(first)))
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    theirs = np.concatenate(outputs)[:len(images)].transpose(0, 2, 3, 1)

    scale = float(np.abs(ours).max())
    error = float(np.abs(theirs - ours).max()) / scale if scale > 0 else float("inf")
    print(json.dumps({
        "images": len(images), "seconds": seconds, "cpu_seconds": cpu_seconds,
        "images_per_second": len(images) / seconds, "max_relative_error_vs_extract": error,
        "openvino": ov.__version__, "precision": args.precision,
        "execution_precision": str(compiled.get_property("INFERENCE_PRECISION_HINT")),
        "threads": args.threads, "batch": batch,
    }))


if __name__ == "__main__":
    main()
